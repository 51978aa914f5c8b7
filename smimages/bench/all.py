"""make bench: one table, and one JSON (out/bench.json), for every image built, measured the same
way every time (medians of repeats; ratios from one run):

- size on disk against its floor (installed Python packages + Python runtime + the root OS layer),
  warm rebuild after a change to entrypoints/ alone, and with COLD=1 a build without cache;
- `train` overhead, docker run to the first line of a trivial script, ours against
  sagemaker-training's own `train` in the same image;
- serving images (those whose lock pins gunicorn): time to the first /ping 200, /invocations
  p50/p99 and requests per second at 1 and 16 clients, idle memory and `docker stop` time, with an
  echo inference script, so the figures are the server's own;
- one training epoch of the custom-framework example inside its container against the same script
  on this host, as a ratio;
- for the images that launch several hosts over MPI, jobs of 2, 4 and 8 hosts: start to the first
  all-reduce and teardown (smimages/bench/scale.py: its own table, and out/bench-scale.json).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from smimages.bench import scale, serving, train_overhead
from smimages.bench import sizes as image_bench
from smimages.catalog import ROOT as REPO
from smimages.catalog import discover, products
from smimages.sample_job import example_job
from smimages.testing.harness import run_job

ECHO = """def model_fn(model_dir):
    return None


def transform_fn(model, body, content_type, accept):
    return body, accept
"""
EPOCH_ROWS, EPOCHS = 1_000_000, 500  # about 2 s of epochs per run: long enough to time


def serving_figures(ref, repeats=3):
    """Each figure the median of `repeats` runs, each from a fresh container."""
    with tempfile.TemporaryDirectory() as model:
        Path(model, "code").mkdir()
        Path(model, "code", "inference.py").write_text(ECHO)
        os.chmod(model, 0o755)
        body = (",".join(["0.5"] * 784) + "\n").encode()
        return serving.medians([serving.bench(ref, model, body, "text/csv", [1, 16], 2000, []) for _ in range(repeats)])


def epoch_ratio(repeats=3):
    """seconds per epoch of examples/custom-framework in its image, over the same on this host:
    host and container runs interleaved, the median of each."""
    runs = [one_epoch_pair() for _ in range(repeats)]
    host = statistics.median(r[0] for r in runs)
    container = statistics.median(r[1] for r in runs)
    return {"host_s_per_epoch": host, "container_s_per_epoch": container, "container_over_host": container / host,
            "repeats": repeats}


def one_epoch_pair():
    """(host, container) seconds per epoch of the example on the same data, one run each."""
    with tempfile.TemporaryDirectory() as tmp:
        job = example_job(Path(tmp), train_rows=EPOCH_ROWS, epochs=EPOCHS)
        data = Path(tmp, "data")
        args = ["--epochs", str(EPOCHS), "--learning-rate", "0.5"]
        subprocess.run([sys.executable, str(REPO / "examples" / "custom-framework" / "train.py"), *args,
                        "--train", str(data / "train"), "--validation", str(data / "validation"),
                        "--model-dir", str(Path(tmp, "host"))], check=True, capture_output=True, timeout=600)
        host = json.loads(Path(tmp, "host", "metrics.json").read_text())["seconds_per_epoch"]
        [r] = run_job(discover()["custom-framework"].tag, job, timeout_s=600)
        if r.exit_code != 0:
            raise SystemExit(f"the example failed in its container: {r.failure_first_line}")
        return host, json.loads((r.model / "metrics.json").read_text())["seconds_per_epoch"]


def main():
    catalog = discover()
    names = sys.argv[1:] or products(catalog)
    cold = os.environ.get("COLD") == "1"
    rows = []
    for name in names:
        image = catalog[name]
        row = {"image": name, "size_mb": image_bench.size(image.tag) / 1e6, "floor_mb": image_bench.floor(image.tag) / 1e6,
               "warm_rebuild_s": image_bench.warm_rebuild(name, 3)}
        row["size_over_floor"] = row["size_mb"] / row["floor_mb"]
        if cold:
            row["cold_build_s"] = image_bench.build_seconds(name, "--no-cache")
        row["train"] = train_overhead.measure(image.tag, 5)
        if "gunicorn" in image.pins():
            row["serving"] = serving_figures(image.tag)
        rows.append(row)
        print(f"measured {name}:\n{HEAD}\n{table_row(row)}", file=sys.stderr, flush=True)
    result = {"images": rows}
    if "custom-framework" in names:
        result["epoch"] = epoch_ratio()
    print_table(result)
    out = REPO / "out" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"(all figures in {out.relative_to(REPO)})")
    several_hosts = [n for n in names if n in scale.SCRIPTS]
    if several_hosts:
        scale.main(["--images", *several_hosts])


HEAD = (f"{'image':<22}{'size MB':>9}{'floor':>7}{'ratio':>6}{'warm s':>7}{'cold s':>7}"
        f"{'train s':>8}{'toolkit s':>10}{'ratio':>6}{'ping s':>7}{'p50/p99 ms (1)':>16}{'p50/p99 ms (16)':>17}"
        f"{'rps 1/16':>11}{'idle MiB':>9}{'stop s':>7}")


def table_row(r):
    s = r.get("serving")
    load = {x["clients"]: x for x in s["load"]} if s else {}
    line = (f"{r['image']:<22}{r['size_mb']:>9.0f}{r['floor_mb']:>7.0f}{r['size_over_floor']:>6.2f}"
            f"{r['warm_rebuild_s']:>7.1f}{r.get('cold_build_s', float('nan')):>7.0f}"
            f"{r['train']['ours']:>8.2f}{r['train']['sagemaker-training']:>10.2f}"
            f"{r['train']['ours'] / r['train']['sagemaker-training']:>6.2f}")
    if s:
        line += (f"{s['first_ping_200_s']:>7.2f}{load[1]['p50_ms']:>8.1f}/{load[1]['p99_ms']:<7.1f}"
                 f"{load[16]['p50_ms']:>8.1f}/{load[16]['p99_ms']:<8.1f}"
                 f"{load[1]['rps']:>5.0f}/{load[16]['rps']:<5.0f}{s['idle_memory_mib']:>9.0f}{s['stop_s']:>7.2f}")
    return line


def print_table(result):
    print(HEAD)
    for r in result["images"]:
        print(table_row(r))
    if "epoch" in result:
        e = result["epoch"]
        print(f"custom-framework example, one epoch: {e['container_s_per_epoch']:.3f} s in its container, "
              f"{e['host_s_per_epoch']:.3f} s on the host: ratio {e['container_over_host']:.2f}")


if __name__ == "__main__":
    main()
