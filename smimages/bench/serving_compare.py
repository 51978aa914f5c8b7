"""Our model server against TorchServe and MMS, as AWS's images run them, in one run and one
table: the same tiny TorchScript model (Linear(784, 10) + softmax, loaded by an inference script
that defines model_fn only), the same CSV record of 784 numbers in, JSON out, measured by
smimages.bench.serving's bench() one server after another.

    python -m smimages.bench.serving_compare [--requests 1000] [--clients 1 16] [--repeats 3]

The images: ours is sm-images/pytorch-horovod-cpu (`serve`: the shared model server); the other
two are benchmark-only images on top of it (bench/images): TorchServe started by
sagemaker-pytorch-inference's `serve`, and MMS started by sagemaker-inference's
start_model_server with that toolkit's handler service. "Overhead" is the p50 latency at one
client less the model's own time (the median of model(x) for the same input, timed in a loop in
a container of our image). Writes out/bench-serving-compare.json.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from smimages.bench import serving
from smimages.bench.tables import grid
from smimages.build import exists
from smimages.catalog import ROOT as REPO
from smimages.catalog import tag

OURS = tag("pytorch-horovod-cpu")
SERVERS = [  # (column, image, the command that builds it)
    ("ours", OURS, "make build IMAGE=pytorch-horovod-cpu"),
    ("TorchServe", tag("torchserve"), "IMAGES_DIR=bench/images python -m smimages.build torchserve"),
    ("MMS", tag("mms"), "IMAGES_DIR=bench/images python -m smimages.build mms"),
]
CONTENT_TYPE, ACCEPT = "text/csv", "application/json"
BODY = (",".join(f"{(i % 255) / 255:.4f}" for i in range(784)) + "\n").encode()
PROBES = {"bad content type (text/plain)": ("text/plain", BODY),
          "bad JSON (application/json)": ("application/json", b'{"instances": [1, 2,')}

MAKE_MODEL = '''import os, sys
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(784, 10)

    def forward(self, x):
        return torch.softmax(self.linear(x), dim=-1)


torch.manual_seed(0)
torch.jit.save(torch.jit.script(Net().eval()), os.path.join(sys.argv[1], "model.pt"))
'''
INFERENCE = '''import os

import torch


def model_fn(model_dir):
    return torch.jit.load(os.path.join(model_dir, "model.pt"))
'''
MODEL_TIME = '''import json, statistics, sys, time
import torch

model = torch.jit.load(sys.argv[1] + "/model.pt").eval()
x = torch.tensor([[float(v) for v in open(sys.argv[2]).read().split(",")]])
result, default = {}, torch.get_num_threads()
for threads in (default, 1):
    torch.set_num_threads(threads)
    times = []
    with torch.no_grad():
        for i in range(3000):
            started = time.perf_counter()
            model(x)
            if i >= 500:
                times.append(time.perf_counter() - started)
    result[threads] = 1000 * statistics.median(times)
print(json.dumps({"threads": default, "ms": result}))
'''


def check_images():
    missing = [(image, build) for _, image, build in SERVERS if not exists(image)]
    for image, build in missing:
        print(f"{image} is missing: build it with `{build}` (or run `make bench-serving`)", file=sys.stderr)
    if missing:
        sys.exit(2)


def make_model(folder, tool):
    """model.pt (TorchScript, made in a container of our image: the host has no torch) and
    code/inference.py, laid out as SageMaker extracts model.tar.gz into /opt/ml/model."""
    Path(tool, "make_model.py").write_text(MAKE_MODEL)
    Path(folder, "code").mkdir()
    Path(folder, "code", "inference.py").write_text(INFERENCE)
    serving.docker("run", "--rm", "-v", f"{tool}:/tool:ro", "-v", f"{folder}:/model", OURS,
                   "python", "/tool/make_model.py", "/model")
    os.chmod(folder, 0o755)


def model_time(folder, tool):
    """The median of model(x) for the request's record, in ms, in our image: with torch's default
    threads and with one."""
    Path(tool, "model_time.py").write_text(MODEL_TIME)
    Path(tool, "body.csv").write_bytes(BODY)
    out = serving.docker("run", "--rm", "-v", f"{tool}:/tool:ro", "-v", f"{folder}:/model:ro", OURS,
                         "python", "/tool/model_time.py", "/model", "/tool/body.csv")
    measured = json.loads(out.splitlines()[-1])
    return {"default_threads": measured["threads"],
            "ms_default_threads": measured["ms"][str(measured["threads"])], "ms_one_thread": measured["ms"]["1"]}


def level(r, clients):
    return next(x for x in r["load"] if x["clients"] == clients)


def table(results, model):
    """One row per figure: a column per server, then ours/TorchServe and ours/MMS."""
    own = model["ms_default_threads"]
    names = [name for name, _, _ in SERVERS]

    def number(fmt, get):
        return [(get(results[n]), fmt) for n in names]

    def text(get):
        return [(None, get(results[n])) for n in names]

    rows = [("time to first /ping 200 (s)", number("{:.2f}", lambda r: r["first_ping_200_s"])),
            ("time to first /invocations 200 (s)", number("{:.2f}", lambda r: r["first_answer_s"])),
            ("/invocations sent at first /ping 200", text(after_ping))]
    for c in sorted({x["clients"] for r in results.values() for x in r["load"]}):
        rows += [(f"overhead p50, {c} client(s) (ms)", number("{:.2f}", lambda r, c=c: level(r, c)["p50_ms"] - own)),
                 (f"p50 latency, {c} client(s) (ms)", number("{:.2f}", lambda r, c=c: level(r, c)["p50_ms"])),
                 (f"p99 latency, {c} client(s) (ms)", number("{:.2f}", lambda r, c=c: level(r, c)["p99_ms"])),
                 (f"requests/s, {c} client(s)", number("{:,.0f}", lambda r, c=c: level(r, c)["rps"]))]
    rows += [("idle memory (MiB)", number("{:.0f}", lambda r: r["idle_memory_mib"])),
             ("docker stop (s)", number("{:.2f}", lambda r: r["stop_s"])),
             ("exit code after docker stop", text(lambda r: str(r["stop_exit_code"])))]
    rows += [(f"status: {name}", text(lambda r, name=name: str(r["probes"][name]))) for name in PROBES]

    header = ["", *names, "ours/TorchServe", "ours/MMS"]
    lines = []
    for label, cells in rows:
        shown = [fmt.format(v) if v is not None else fmt for v, fmt in cells]
        ours = cells[0][0]
        ratios = [f"{ours / v:.2f}x" if ours is not None and v else "" for v, _ in cells[1:]]
        lines.append([label, *shown, *ratios])
    return grid(header, lines)


def after_ping(r):
    """The status of the first /invocations sent once /ping said 200, and how long after that
    /ping 200 the first 200 on /invocations came (a server that says 200 before its model is
    loaded makes that first request wait, or fail)."""
    status = r["first_invocation_status"]
    wait = r["first_answer_s"] - r["first_ping_200_s"]
    return f"{status if status is not None else 'no connection'}; 200 at +{wait:.2f} s"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000, help="requests per load level")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--repeats", type=int, default=3, help="fresh containers per server; figures are medians")
    args = ap.parse_args()
    check_images()
    with tempfile.TemporaryDirectory() as model, tempfile.TemporaryDirectory() as tool:
        os.chmod(tool, 0o755)
        make_model(model, tool)
        own = model_time(model, tool)
        print(f"model's own time: {own['ms_default_threads']:.3f} ms ({own['default_threads']} threads), "
              f"{own['ms_one_thread']:.3f} ms (1 thread)", flush=True)
        results = {}
        for name, image, _ in SERVERS:
            print(f"==> {name}: {image}", flush=True)
            results[name] = serving.medians([
                serving.bench(image, model, BODY, CONTENT_TYPE, args.clients, args.requests, [],
                              accept=ACCEPT, probes=PROBES, deadline_s=300) for _ in range(args.repeats)])
    print(f"\nserving compare: the same TorchScript Linear(784, 10) + softmax, {len(BODY)} byte CSV record in, "
          f"JSON out, {args.requests} requests per load level, medians of {args.repeats} runs; the model's own time "
          f"{own['ms_default_threads']:.3f} ms (subtracted for 'overhead')")
    print(table(results, own))
    out = REPO / "out" / "bench-serving-compare.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"model_time": own, "requests": args.requests, "content_type": CONTENT_TYPE,
                               "accept": ACCEPT, "servers": results}, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
