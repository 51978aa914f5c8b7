#!/usr/bin/env python3
"""Prints the blocks of a pip-compile lock file whose package names match (--only) or do not
match (--skip) a regular expression, hashes and all, so one lock can be installed in layers:

    lock-select requirements.lock --only '^(torch|torchvision)$' > part.lock

The one lock splitter of every image: installed as `lock-select` in sm-images/builder.
"""

import argparse
import re
import sys


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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("lock")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--only", help="keep packages whose name matches")
    group.add_argument("--skip", help="drop packages whose name matches")
    args = ap.parse_args(argv)
    pattern = re.compile(args.only or args.skip)
    with open(args.lock) as f:
        for name, block in blocks(f.read()):
            if bool(pattern.search(name)) == bool(args.only):
                sys.stdout.write(block)


if __name__ == "__main__":
    main()
