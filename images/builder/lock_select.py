#!/usr/bin/env python3
"""Prints the blocks of a pip-compile lock file whose package names match (--only) or do not
match (--skip) a regular expression, hashes and all, so one lock can be installed in layers; or,
with --wheels, puts those packages' wheels in a folder:

    lock-select requirements.lock --only '^(torch|torchvision)$' > part.lock
    lock-select requirements.lock --skip '^torch$' --wheels /wheels/rest
    lock-select requirements.lock --only '^torch$' --wheels /wheels/torch --index-url "$TORCH_INDEX_URL"

--wheels builds them hash-checked from PyPI (pip wheel --require-hashes: sdists compile here, in
sm-images/builder, with its compilers). --index-url takes the same versions from another index
instead, a CPU-only PyTorch index for instance, which is trusted as it is (its files are not in
the lock, so they are not hash-checked) and has no CUDA runtime: nvidia-*, cuda-* and triton are
left out. An empty --index-url means PyPI. The host's CA bundle, when mounted as the build secret
`ca`, is pip's.

The one lock tool of every image: installed as `lock-select` in sm-images/builder.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

CUDA_RUNTIME = re.compile(r"^(nvidia-.*|cuda-.*|triton)$")
CA_SECRET = "/run/secrets/ca"


def blocks(text):
    """(name, block text) for each requirement: a `name==version \\` line and its hash lines."""
    current = None
    for line in text.splitlines(keepends=True):
        if line[:1] not in ("", " ", "#", "\n"):
            if current:
                yield current
            current = [re.split(r"[=<>!~ ;\[]", line, maxsplit=1)[0].lower(), line]
        elif current and line.lstrip().startswith("--hash"):
            current[1] += line
    if current:
        yield current


def pip(*args):
    env = {**os.environ, **({"PIP_CERT": CA_SECRET} if os.path.exists(CA_SECRET) else {})}
    subprocess.run([sys.executable, "-m", "pip", *args, "--progress-bar", "off", "--no-deps"], env=env, check=True)


def wheels(selected, folder, index_url):
    os.makedirs(folder, exist_ok=True)
    if index_url:
        pins = [block.split()[0] for name, block in selected if not CUDA_RUNTIME.match(name)]
        print(f"from {index_url}: {' '.join(pins)}", flush=True)
        pip("download", "--index-url", index_url, "-d", folder, *pins)
        return
    with tempfile.NamedTemporaryFile("w", suffix=".lock") as part:
        part.write("".join(block for _, block in selected))
        part.flush()
        pip("wheel", "--require-hashes", "-r", part.name, "-w", folder)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lock")
    group = ap.add_mutually_exclusive_group()  # neither: every package
    group.add_argument("--only", help="keep packages whose name matches")
    group.add_argument("--skip", help="drop packages whose name matches")
    ap.add_argument("--wheels", metavar="DIR", help="put the kept packages' wheels in DIR instead of printing them")
    ap.add_argument("--index-url", default="", help="with --wheels: the same versions from this index (see above)")
    args = ap.parse_args(argv)
    pattern = re.compile(args.only or args.skip or "(?!)")  # (?!) matches nothing: --skip nothing
    with open(args.lock) as f:
        selected = [(n, b) for n, b in blocks(f.read()) if bool(pattern.search(n)) == bool(args.only)]
    if args.wheels:
        wheels(selected, args.wheels, args.index_url)
    else:
        sys.stdout.write("".join(block for _, block in selected))


if __name__ == "__main__":
    main()
