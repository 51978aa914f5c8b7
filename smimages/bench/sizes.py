"""Image figures, measured the same way every time: size on disk against its floor (installed
Python packages + the Python runtime + the smallest OS layer), and build times: warm rebuild after
a change to entrypoints/ alone, and, with --cold, a build without the layer cache.

    python -m smimages.bench.sizes [--cold] [--repeat N] [IMAGE ...]     (writes out/bench-images.json)
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

from smimages.catalog import DOCKER, ROOT_IMAGE, discover, products
from smimages.catalog import ROOT as REPO

MARKER = REPO / "entrypoints" / "sm_entrypoint" / "_bench_marker.py"
FLOOR_SCRIPT = (
    "du -sb $(python3 -c 'import site; print(\" \".join(site.getsitepackages()))') "
    "/usr/lib/python3.11 /usr/bin/python3.11 /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0 2>/dev/null "
    "| awk '{s+=$1} END {printf \"%.0f\\n\", s}'"  # %.0f: `print` gives 5.8e+09 past 2^31
)


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


def size(ref):
    return int(sh(DOCKER, "image", "inspect", "-f", "{{.Size}}", ref))


def floor(ref):
    python_and_packages = int(sh(DOCKER, "run", "--rm", "--entrypoint", "bash", ref, "-c", FLOOR_SCRIPT))
    return python_and_packages + size(ROOT_IMAGE)


def build_seconds(name, *flags):
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "smimages.build", *flags, name], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start


def warm_rebuild(name, repeat):
    """Median seconds to rebuild after a change to entrypoints/ alone."""
    times = []
    try:
        for i in range(repeat):
            MARKER.write_text(f"# bench marker {time.time()} {i}\n")
            times.append(build_seconds(name))
    finally:
        MARKER.unlink(missing_ok=True)
        build_seconds(name)  # leave the image as the tree is
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("images", nargs="*")
    ap.add_argument("--cold", action="store_true", help="also time a build without the layer cache")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    images = discover()
    names = args.images or products(images)
    rows = []
    for name in names:
        ref = images[name].tag
        row = {"image": name, "size_mb": size(ref) / 1e6, "floor_mb": floor(ref) / 1e6,
               "warm_rebuild_s": warm_rebuild(name, args.repeat)}
        row["size_over_floor"] = row["size_mb"] / row["floor_mb"]
        if args.cold:
            row["cold_build_s"] = build_seconds(name, "--no-cache")
        rows.append(row)
    print(f"{'image':<20} {'size MB':>9} {'floor MB':>9} {'ratio':>6} {'warm rebuild s':>15} {'cold build s':>13}")
    for r in rows:
        cold = f"{r['cold_build_s']:.1f}" if "cold_build_s" in r else "-"
        print(f"{r['image']:<20} {r['size_mb']:>9.0f} {r['floor_mb']:>9.0f} {r['size_over_floor']:>6.2f} "
              f"{r['warm_rebuild_s']:>15.1f} {cold:>13}")
    out = REPO / "out" / "bench-images.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"(written to {out.relative_to(REPO)})")


if __name__ == "__main__":
    main()
