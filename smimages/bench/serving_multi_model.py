"""Multi-model endpoints (SAGEMAKER_MULTI_MODEL=true): our model server against MMS's multi-model
mode, in one run and one table, called as SageMaker's platform calls them: POST /models
{"model_name", "url"} to load, POST /models/<name>/invoke to invoke, DELETE /models/<name> to
unload. The same tiny TorchScript model and CSV record as smimages.bench.serving_compare, in
`--models` copies (one name each), one worker per model on both servers.

    python -m smimages.bench.serving_multi_model [--models 3] [--requests 1000] [--clients 16] [--repeats 3]

Per server and fresh container: load time per model (each POST /models until it answers 200, one
model after another), p50/p99 latency at one client (on the first model) and requests per second
at `--clients` clients spread over the models (client k on model k mod N), memory per loaded model
(the container's memory once all are loaded and invoked once, less its idle memory, over N) and
memory given back on unload (the container's memory before unloading every model, after the
traffic, less after, over N). The servers take turns, a fresh container each run. Ours is
sm-images/pytorch-horovod-cpu; MMS is the benchmark-only sm-images/mms (bench/images/mms), whose
`serve` is sagemaker-inference's start_model_server: with SAGEMAKER_MULTI_MODEL=true it starts MMS
with model store "/" and no model, and MMS answers the same calls on the same port.
Writes out/bench-serving-multi-model.json.
"""

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from smimages.bench import serving
from smimages.bench.serving_compare import ACCEPT, BODY, CONTENT_TYPE, SERVERS, make_model
from smimages.bench.tables import grid
from smimages.build import exists
from smimages.catalog import DOCKER
from smimages.catalog import ROOT as REPO

MME_SERVERS = [s for s in SERVERS if s[0] in ("ours", "MMS")]  # (column, image, the command that builds it)
MODELS = "/opt/ml/models"
TARGET_MODEL = "X-Amzn-SageMaker-Target-Model"
ENV = {"SAGEMAKER_MULTI_MODEL": "true", "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
SETTLE_S = 2  # before each memory reading


def call(port, method, path, payload=None, timeout_s=120):
    """A management call -> (status, answer text), bounded by `timeout_s`."""
    body = None if payload is None else json.dumps(payload).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def expect_200(what, status, answer, container):
    if status != 200:
        logs = subprocess.run([DOCKER, "logs", "--tail", "30", container], capture_output=True, text=True)
        raise SystemExit(f"{what} answered {status}: {answer[:500]}\n--- the container's last log lines:\n"
                         f"{logs.stdout}{logs.stderr}")


def processes(container):
    return len(serving.docker("top", container).splitlines()) - 1


def bench(image, models_folder, names, clients, total, deadline_s=180):
    """One fresh container: load every model, measure, unload every model."""
    headers = {"Content-Type": CONTENT_TYPE, "Accept": ACCEPT}
    targets = [(f"/models/{n}/invoke", {TARGET_MODEL: f"{n}.tar.gz"}) for n in names]
    env_args = [a for k, v in ENV.items() for a in ("-e", f"{k}={v}")]
    container = serving.docker("run", "-d", "-p", "127.0.0.1::8080", "-v", f"{models_folder}:{MODELS}:ro",
                               *env_args, image, "serve")
    try:
        port = int(serving.docker("port", container, "8080/tcp").splitlines()[0].rsplit(":", 1)[1])
        serving.first_200(port, "GET", "/ping", None, {}, time.monotonic() + deadline_s)
        time.sleep(SETTLE_S)
        idle, idle_processes = serving.memory_mib(container), processes(container)

        load_s = []
        for name in names:
            started = time.monotonic()
            status, answer = call(port, "POST", "/models", {"model_name": name, "url": f"{MODELS}/{name}/model"})
            load_s.append(time.monotonic() - started)
            expect_200(f"POST /models ({name})", status, answer, container)
        for path, extra in targets:  # each model answers before anything is measured on it
            status = serving.request(http.client.HTTPConnection("127.0.0.1", port, timeout=60), "POST", path,
                                     BODY, {**headers, **extra})
            expect_200(f"POST {path}", status, "", container)
        time.sleep(SETTLE_S)
        loaded, loaded_processes = serving.memory_mib(container), processes(container)
        status, listed = call(port, "GET", "/models")
        expect_200("GET /models", status, listed, container)

        levels = [serving.load(port, BODY, headers, 1, total, targets[:1]),
                  serving.load(port, BODY, headers, clients, total, targets)]

        time.sleep(SETTLE_S)
        before_unload = serving.memory_mib(container)
        unload_s = []
        for name in names:
            started = time.monotonic()
            status, answer = call(port, "DELETE", f"/models/{name}")
            unload_s.append(time.monotonic() - started)
            expect_200(f"DELETE /models/{name}", status, answer, container)
        time.sleep(SETTLE_S)
        unloaded, unloaded_processes = serving.memory_mib(container), processes(container)
    finally:
        subprocess.run([DOCKER, "rm", "-f", container], capture_output=True)
    n = len(names)
    return {"image": image, "models": n, "load_s_per_model": statistics.mean(load_s), "load_s": load_s,
            "idle_memory_mib": idle, "loaded_memory_mib": loaded, "mib_per_loaded_model": (loaded - idle) / n,
            "before_unload_memory_mib": before_unload, "unloaded_memory_mib": unloaded,
            "mib_given_back_per_model": (before_unload - unloaded) / n,
            "unload_s_per_model": statistics.mean(unload_s), "unload_s": unload_s,
            "processes": {"idle": idle_processes, "loaded": loaded_processes, "unloaded": unloaded_processes},
            "models_listed": json.loads(listed), "load": levels}


def make_models(root, names, tool):
    """<root>/<name>/model/{model.pt, code/inference.py} for each name, as the platform extracts
    model.tar.gz under /opt/ml/models: serving_compare's model, made once and copied."""
    first = Path(root, names[0], "model")
    first.mkdir(parents=True)
    make_model(str(first), tool)
    for name in names[1:]:
        shutil.copytree(first, Path(root, name, "model"))
    for folder, dirs, _ in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(folder, d), 0o755)
    os.chmod(root, 0o755)


def table(results, clients):
    names = [name for name, _, _ in MME_SERVERS]
    models = results[names[0]]["models"]
    rows = [("load s/model (POST /models until 200)", "{:.2f}", lambda r: r["load_s_per_model"]),
            ("p50 ms, 1 client", "{:.2f}", lambda r: r["load"][0]["p50_ms"]),
            ("p99 ms, 1 client", "{:.2f}", lambda r: r["load"][0]["p99_ms"]),
            (f"requests/s at {clients} clients over the models", "{:,.0f}", lambda r: r["load"][1]["rps"]),
            ("MiB per loaded model", "{:.0f}", lambda r: r["mib_per_loaded_model"]),
            ("MiB given back on unload, per model", "{:.0f}", lambda r: r["mib_given_back_per_model"])]
    header = [f"{models} models, 1 worker per model on both", *names, "ours/MMS"]
    lines = []
    for label, fmt, get in rows:
        values = [get(results[n]) for n in names]
        ratio = f"{values[0] / values[1]:.2f}x" if values[1] else ""
        lines.append([label, *(fmt.format(v) for v in values), ratio])
    return grid(header, lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=3, help="copies of the model, one name each")
    ap.add_argument("--requests", type=int, default=1000, help="requests per load level")
    ap.add_argument("--clients", type=int, default=16, help="clients for the throughput level")
    ap.add_argument("--repeats", type=int, default=3, help="fresh containers per server; figures are medians")
    args = ap.parse_args()
    missing = [(image, build) for _, image, build in MME_SERVERS if not exists(image)]
    for image, build in missing:
        print(f"{image} is missing: build it with `{build}` (or run `make bench-serving`)", file=sys.stderr)
    if missing:
        return 2
    names = [f"model{i}" for i in range(1, args.models + 1)]
    with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as tool:
        os.chmod(tool, 0o755)
        make_models(root, names, tool)
        runs = {name: [] for name, _, _ in MME_SERVERS}
        for i in range(args.repeats):  # interleaved, so that whatever else the machine does hits both
            for name, image, _ in MME_SERVERS:
                r = bench(image, root, names, args.clients, args.requests)
                runs[name].append(r)
                print(f"==> run {i + 1}, {name} ({image}): load {r['load_s_per_model']:.2f} s/model, "
                      f"{r['load'][1]['rps']:,.0f} requests/s, {r['mib_per_loaded_model']:.0f} MiB/model, "
                      f"{r['mib_given_back_per_model']:.0f} MiB/model back; processes {r['processes']}", flush=True)
        results = {name: serving.medians(r) for name, r in runs.items()}
    print(f"\nserving multi-model: {args.models} copies of the same TorchScript Linear(784, 10) + softmax as "
          f"serving compare, {len(BODY)} byte CSV record in, JSON out, 1 worker per model on both servers "
          f"(SAGEMAKER_MODEL_SERVER_WORKERS=1), {args.requests} requests per load level, medians of "
          f"{args.repeats} runs (fresh containers each, the servers taking turns)")
    print(table(results, args.clients))
    out = REPO / "out" / "bench-serving-multi-model.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"models": names, "requests": args.requests, "clients": args.clients, "env": ENV,
                               "content_type": CONTENT_TYPE, "accept": ACCEPT, "servers": results}, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
