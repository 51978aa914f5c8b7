"""The one image-build driver: builds images in dependency order with BuildKit (`make build`).

    python -m smimages.build                      # the root image, the shared base, then every image
    python -m smimages.build custom-framework     # one image (and what it stands on)
    python -m smimages.build --no-cache mxnet     # from scratch (the root image is kept)

What an image stands on, its framework versions (passed as <PACKAGE>_VERSION build arguments) and
its labels come from smimages.catalog. The root (sm-images/debian:bookworm) is made from Debian's
archive by tools/base-image.sh unless BASE_IMAGE names another root (a registry image, for
instance). The host's CA bundle goes in as a BuildKit secret, never into a layer. A failed build
names the image and the step it failed at.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

from smimages.catalog import DOCKER, ROOT, ROOT_IMAGE, discover, needs, parent_of
from smimages.labels import labels

IMAGES_DIR = os.environ.get("IMAGES_DIR")  # overridable for tests
MIN_FREE_GB = float(os.environ.get("MIN_FREE_GB", "8"))
STEP = re.compile(r"^#\d+ \[([^\]]+)\] (.*)$")
TRANSIENT = ("no active session", "context deadline exceeded")


def say(msg):
    print(f"==> {msg}", flush=True)


def order(names, images):
    """`names` and the images they stand on, parents first."""
    done, out = set(), []

    def visit(name, trail=()):
        if name in trail:
            sys.exit(f"images form a cycle: {' -> '.join(trail + (name,))}")
        if name in done:
            return
        if name not in images:
            sys.exit(f"no such image: {name} (have: {', '.join(images)})")
        for need in needs(images[name], images):
            visit(need.name, trail + (name,))
        done.add(name)
        out.append(images[name])

    for n in names:
        visit(n)
    return out


def exists(ref):
    """Whether the engine has the image `ref` (the one check the build, the tests and the bench use)."""
    return subprocess.run([DOCKER, "image", "inspect", ref], capture_output=True).returncode == 0


def image_id(ref):
    out = subprocess.run([DOCKER, "image", "inspect", "-f", "{{.Id}}", ref], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def drop_if_dangling(previous, tag):
    """A rebuild of a changed tree gets a new ID; the old one, now untagged, goes."""
    if previous and previous != image_id(tag):
        subprocess.run([DOCKER, "image", "rm", previous], capture_output=True)  # kept if still tagged or used


def check_engine():
    if not shutil.which(DOCKER):
        sys.exit(f"{DOCKER} not found: run `make engine` (installs and starts the Docker engine)")
    if subprocess.run([DOCKER, "info"], capture_output=True).returncode != 0:
        sys.exit("the Docker engine does not answer: run `make engine` (installs and starts it)")


def check_disk():
    root = subprocess.run([DOCKER, "info", "-f", "{{.DockerRootDir}}"], capture_output=True, text=True).stdout.strip()
    free_gb = shutil.disk_usage(root or "/").free / 1e9
    say(f"{free_gb:.1f} GB free under {root or '/'}")
    if free_gb < MIN_FREE_GB:
        sys.exit(f"only {free_gb:.1f} GB free; builds need at least {MIN_FREE_GB:g} GB (MIN_FREE_GB); "
                 f"`docker system prune` frees old layers")


def ca_bundle():
    return subprocess.run([str(ROOT / "tools" / "ca-bundle.sh")], capture_output=True, text=True, check=True).stdout.strip()


def docker_build(image, base_ref, no_cache):
    name = image.name
    cmd = [DOCKER, "build", "--progress=plain", "-f", str(image.dockerfile), "-t", image.tag,
           "--secret", f"id=ca,src={ca_bundle()}"]
    args = {**image.version_args(), **image.build_args, "BASE_IMAGE": base_ref}
    args.update(a.split("=", 1) for a in os.environ.get("BUILD_ARGS", "").split())
    for label in (f"{k}={v}" for k, v in labels(image).items()):  # metadata only: no layer rebuilds
        cmd += ["--label", label]
    for arg in (f"{k}={v}" for k, v in args.items()):
        cmd += ["--build-arg", arg]
    if no_cache:
        cmd.append("--no-cache")
    cmd.append(str(ROOT))
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace")
    step, tail = "(before the first step)", []
    for line in proc.stdout:
        print(f"[{name}] {line}", end="", flush=True)
        m = STEP.match(line.strip())
        if m and not m.group(1).startswith("internal"):
            step = f"[{m.group(1)}] {m.group(2)}"
        tail = (tail + [line])[-30:]
    return proc.wait(), step, "".join(tail)


def build(image, images, root_ref, no_cache):
    name = image.name
    parent = parent_of(image, images)
    base_ref = parent.tag if parent else (root_ref or image.base_ref())
    start = time.monotonic()
    previous = image_id(image.tag)
    say(f"building {image.tag} FROM {base_ref}")
    for attempt in (1, 2):
        rc, step, tail = docker_build(image, base_ref, no_cache)
        if rc == 0:
            say(f"built {image.tag} in {time.monotonic() - start:.1f} s")
            drop_if_dangling(previous, image.tag)
            return
        if attempt == 1 and any(t in tail for t in TRANSIENT):
            say(f"{name}: BuildKit lost its session ({step}); retrying the build once")
            continue
        sys.exit(f"build of image '{name}' failed at step {step} (docker build exit {rc}); its output is above")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="*", help="images to build (default: all)")
    ap.add_argument("--no-cache", action="store_true", help="build without the layer cache")
    ap.add_argument("--missing", action="store_true", help="build only images that do not exist yet")
    args = ap.parse_args()
    check_engine()
    check_disk()
    root_ref = os.environ.get("BASE_IMAGE") or None
    if not root_ref:
        subprocess.run([str(ROOT / "tools" / "base-image.sh"), ROOT_IMAGE], check=True)
    images = discover(IMAGES_DIR)
    wanted = args.images or list(images)
    for image in order(wanted, images):  # parents are rebuilt too: from cache that takes a second
        if args.missing and exists(image.tag):
            say(f"{image.tag} exists; not rebuilt")
            continue
        build(image, images, root_ref, args.no_cache)


if __name__ == "__main__":
    main()
