"""Train overhead: seconds from `docker run` to the first line a trivial user script prints, for
our `train` and for sagemaker-training's own (`sagemaker_training.cli.train`) in the same image and
the same run, as medians of interleaved repeats, and their ratio.

    python -m smimages.bench.train_overhead [--repeat N] [IMAGE ...]   (writes out/bench-train.json)
"""

import argparse
import json
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from smimages.catalog import DOCKER, discover, products
from smimages.catalog import ROOT as REPO
from smimages.testing.harness import MLJob, write_tree

MARK = "FIRST-LINE-OF-USER-CODE"
RUN_TIMEOUT_S = 120
COMMANDS = {"ours": ["train"], "sagemaker-training": ["python3", "-m", "sagemaker_training.cli.train"]}


def first_line_seconds(image, ml_dir, command):
    """Seconds from starting `docker run` to MARK on its output (the container runs to its end)."""
    # --hostname as SageMaker names the host: the toolkit waits, forever, until its own name resolves.
    cmd = [DOCKER, "run", "--rm", "--hostname", "algo-1", "-v", f"{ml_dir}:/opt/ml", "-e", "SAGEMAKER_TRAINING_MODULE=",
           image, *command]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    watchdog = threading.Timer(RUN_TIMEOUT_S, proc.kill)  # no run may hang the benchmark
    watchdog.start()
    seen = None
    for line in proc.stdout:
        if seen is None and MARK in line:
            seen = time.monotonic() - start
    watchdog.cancel()
    if proc.wait() != 0 or seen is None:
        raise SystemExit(f"{' '.join(command)} in {image} did not run the script (exit {proc.returncode})")
    return seen


def measure(image, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        job = MLJob(Path(tmp), hyperparameters={"sagemaker_program": "train.py",
                                                "sagemaker_submit_directory": "/opt/ml/code"})
        write_tree(job.tree("algo-1") / "code", {"train.py": f"print('{MARK}', flush=True)\n"})
        times = {k: [] for k in COMMANDS}
        for _ in range(repeat):  # interleaved, so drift on a noisy machine hits both alike
            for name, command in COMMANDS.items():
                times[name].append(first_line_seconds(image, job.tree("algo-1"), command))
    return {k: statistics.median(v) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("images", nargs="*")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    catalog = discover()
    rows = []
    for name in args.images or products(catalog):
        medians = measure(catalog[name].tag, args.repeat)
        rows.append({"image": name, "ours_s": medians["ours"], "toolkit_s": medians["sagemaker-training"],
                     "ours_over_toolkit": medians["ours"] / medians["sagemaker-training"]})
    print(f"docker run -> first line of user code, median of {args.repeat}")
    print(f"{'image':<22} {'ours s':>8} {'toolkit s':>10} {'ratio':>6}")
    for r in rows:
        print(f"{r['image']:<22} {r['ours_s']:>8.2f} {r['toolkit_s']:>10.2f} {r['ours_over_toolkit']:>6.2f}")
    out = REPO / "out" / "bench-train.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
