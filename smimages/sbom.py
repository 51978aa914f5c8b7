"""make sbom: writes a CycloneDX SBOM of each built image to out/sbom/<image>.cdx.json (next to the
push manifest) and prints every Python package it holds with its version."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from smimages.catalog import DOCKER, ROOT, discover, products
from smimages.publish.sbom import cyclonedx, inventory


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("images", nargs="*")
    ap.add_argument("--out", default=str(ROOT / "out" / "sbom"))
    args = ap.parse_args()
    images = discover()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.images or products(images):
        ref = images[name].tag
        try:
            labels = json.loads(subprocess.run([DOCKER, "image", "inspect", "-f", "{{json .Config.Labels}}", ref],
                                               capture_output=True, text=True, check=True).stdout) or {}
            python, debian = inventory(ref)
        except subprocess.CalledProcessError as e:
            print(f"sbom of {ref} failed: {(e.stderr or '').strip() or e}", file=sys.stderr)
            return 1
        path = out / f"{name}.cdx.json"
        path.write_text(json.dumps(cyclonedx(ref, labels, python, debian), indent=1) + "\n")
        print(f"==> {ref}: {len(python)} Python packages, {len(debian)} Debian packages -> {path.relative_to(ROOT)}")
        for p in sorted(python, key=lambda p: p["name"].lower()):
            print(f"    {p['name']}=={p['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
