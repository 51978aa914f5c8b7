"""Serving where SageMaker places it: the model server under the limits a placement sets, in one
run and three tables, each measured side by side (the configurations of a table take turns, a fresh
container each).

    python -m smimages.bench.serving_placements [--quick] [--repeats 3] [--requests 1000] [--streams 20]

1. Serverless-shaped cold start: every serving image of ours (the catalog's products that serve)
   and the peers TorchServe and MMS (bench/images) under `--memory 2g --memory-swap 2g` with no
   GPU, as a serverless endpoint runs a container: `docker run` to the first /ping 200, to the
   first /invocations 200, idle memory (docker stats, 2 s after that), and the workers each server
   started by default; medians of `--repeats` fresh containers. The PyTorch images and the peers
   serve smimages.bench.serving_compare's TorchScript Linear(784, 10) + softmax and its inference
   script; mxnet serves a gluon Dense(784 -> 10) + softmax exported with HybridBlock.export, which
   the image's defaults (sm_mxnet.serving_defaults) load with no script.
2. CPU quota: sm-images/pytorch-horovod-cpu under `--cpus 1` (an inference component's CPU share
   on a bigger host): requests/s at 16 clients with the default worker count and with
   SAGEMAKER_MODEL_SERVER_WORKERS=1, 2, 4, the five configurations (and `--cpus 0.5`, default
   only) taking turns for `--repeats` rounds; the workers started are read from the server's
   "serving ... N worker(s)" log line. The container runs on the machine's last CPU and the load's
   client processes on the others: on SageMaker the callers are never on the instance, and 16
   Python clients sharing the server's CPUs would turn the comparison into one of CPU shares
   (more server processes, more of the machine against the clients). For the same reason the
   clients call the container's own address, not the published port: docker-proxy, which carries
   a published port's traffic, is a host process that competes with the server for its CPU.
3. Time to the first chunk of a streamed answer: an inference script whose transform_fn returns a
   generator of 5 pieces 0.2 s apart, served by our pytorch-horovod-cpu and mxnet; each of
   `--streams` requests is timed from sending it (connection already open) to the first body
   bytes and to the last. A server that streams answers the first piece at once; one that
   collects the answer sends it whole after the last piece (about 0.8 s), and one that cannot take
   an iterator answers an error (its status is shown).

`--quick`: one repeat, 200 requests a level, 5 streamed requests, and only pytorch-horovod-cpu and
TorchServe for the cold start. Writes out/bench-serving-placements.json.
"""

import argparse
import contextlib
import http.client
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from smimages.bench import serving
from smimages.bench.serving_compare import ACCEPT, BODY, CONTENT_TYPE, SERVERS, make_model
from smimages.bench.tables import grid
from smimages.build import exists
from smimages.catalog import ROOT as REPO
from smimages.catalog import discover, tag

OURS = tag("pytorch-horovod-cpu")
MXNET = tag("mxnet")
PEERS = [(name, image, build) for name, image, build in SERVERS if name != "ours"]  # TorchServe, MMS
SERVERLESS = ["--memory", "2g", "--memory-swap", "2g"]  # no --gpus: a serverless endpoint has none
QUOTA_CLIENTS = 16
# The quota rows: the server on the last CPU, the clients on the others (none to spare: shared).
_CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPUSET = ["--cpuset-cpus", str(_CPUS[-1])] if len(_CPUS) > 1 else []
CLIENT_CPUS = set(_CPUS[:-1]) if len(_CPUS) > 1 else None
QUOTA_WORKERS = (1, 2, 4)
PIECES, PIECE_GAP_S = 5, 0.2

# The workers a server says it started: ours (sm_entrypoint.serving.runner), then TorchServe's and
# MMS's configuration dump at start.
WORKER_LINES = (re.compile(r"serving \S+ on port \d+: (\d+) worker\(s\)"),
                re.compile(r"Default workers per model: (\d+)"))

MAKE_MXNET_MODEL = '''import json, os, sys
import mxnet as mx
from mxnet import gluon


class Net(gluon.HybridBlock):
    def __init__(self):
        super().__init__()
        with self.name_scope():
            self.dense = gluon.nn.Dense(10, in_units=784)

    def hybrid_forward(self, F, x):
        return F.softmax(self.dense(x))


mx.random.seed(0)
net = Net()
net.initialize()
net.hybridize()
net(mx.nd.zeros((1, 784)))
net.export(os.path.join(sys.argv[1], "model"), epoch=0)  # model-symbol.json, model-0000.params
with open(os.path.join(sys.argv[1], "model-shapes.json"), "w") as f:
    json.dump([{"name": "data", "shape": [1, 784]}], f)
'''

# transform_fn returns a generator for the body "stream" (what is measured), and bytes for any
# other body, so that bench()'s first /invocations 200 comes on a server that cannot stream too.
STREAMING = f'''import time


def model_fn(model_dir):
    return None


def pieces():
    for i in range({PIECES}):
        if i:
            time.sleep({PIECE_GAP_S})
        yield f"piece {{i}}\\n".encode()


def transform_fn(model, body, content_type, accept):
    return pieces() if body == b"stream" else b"ready\\n"
'''
STREAM_BODY, READY_BODY, STREAM_TYPE = b"stream", b"ready", "text/plain"


def serving_images(quick):
    """(column, image, model kind) of ours that serve, then the peers; `quick`: pytorch-horovod-cpu
    and TorchServe only."""
    ours = [(name, tag(name), "mxnet" if name == "mxnet" else "torch")
            for name, image in discover().items() if image.product and image.serves]
    peers = [(name, image, "torch") for name, image, _ in PEERS]
    if quick:
        return [s for s in ours + peers if s[1] in (OURS, tag("torchserve"))]
    return ours + peers


def make_mxnet_model(folder, tool):
    """model-symbol.json, model-0000.params and model-shapes.json, made in a container of the
    mxnet image (the host has no MXNet)."""
    Path(tool, "make_mxnet_model.py").write_text(MAKE_MXNET_MODEL)
    serving.docker("run", "--rm", "-v", f"{tool}:/tool:ro", "-v", f"{folder}:/model", MXNET,
                   "python", "/tool/make_mxnet_model.py", "/model")
    os.chmod(folder, 0o755)


def make_streaming_model(folder):
    Path(folder, "code").mkdir()
    Path(folder, "code", "inference.py").write_text(STREAMING)
    os.chmod(folder, 0o755)


def workers_started(logs):
    for pattern in WORKER_LINES:
        found = pattern.findall(logs or "")
        if found:
            return int(found[-1])
    return None


def without_logs(result):
    """A bench() result with the workers its log names instead of the log itself."""
    kept = {k: v for k, v in result.items() if k != "logs"}
    kept["workers_started"] = workers_started(result.get("logs"))
    return kept


# --- 1. serverless-shaped cold start -------------------------------------------------------------

def cold_start(servers, models, repeats):
    runs = {name: [] for name, _, _ in servers}
    for i in range(repeats):  # interleaved: whatever else the machine does hits every server
        for name, image, kind in servers:
            r = without_logs(serving.bench(image, models[kind], BODY, CONTENT_TYPE, [], 0, [], accept=ACCEPT,
                                           run_args=SERVERLESS, logs=True, deadline_s=300))
            runs[name].append(r)
            print(f"==> cold start, run {i + 1}, {name}: ping {r['first_ping_200_s']:.2f} s, invocations "
                  f"{r['first_answer_s']:.2f} s, idle {r['idle_memory_mib']:.0f} MiB, "
                  f"{r['workers_started']} worker(s)", flush=True)
    return {name: {**serving.medians(runs[name]), "model": kind,
                   "workers_started": [x["workers_started"] for x in runs[name]]}
            for name, _, kind in servers}


def cold_start_table(results):
    header = ["server (--memory 2g, no GPU)", "model", "workers", "first /ping 200 s", "first /invocations 200 s",
              "idle MiB"]
    lines = [[name, "MXNet Dense" if r["model"] == "mxnet" else "TorchScript Linear",
              "/".join("?" if w is None else str(w) for w in sorted(set(r["workers_started"]))),
              f"{r['first_ping_200_s']:.2f}", f"{r['first_answer_s']:.2f}", f"{r['idle_memory_mib']:.0f}"]
             for name, r in results.items()]
    return grid(header, lines)


# --- 2. CPU quota --------------------------------------------------------------------------------

def quota_configs():
    """(label, --cpus, SAGEMAKER_MODEL_SERVER_WORKERS or None for the default)."""
    return ([("--cpus 1, default", "1", None)] + [(f"--cpus 1, {w} worker(s)", "1", w) for w in QUOTA_WORKERS]
            + [("--cpus 0.5, default", "0.5", None)])


def quota(model, repeats, requests):
    runs = {label: [] for label, _, _ in quota_configs()}
    for i in range(repeats):
        for label, cpus, workers in quota_configs():
            env = [] if workers is None else [f"SAGEMAKER_MODEL_SERVER_WORKERS={workers}"]
            r = without_logs(serving.bench(OURS, model, BODY, CONTENT_TYPE, [QUOTA_CLIENTS], requests, env,
                                           accept=ACCEPT, run_args=["--cpus", cpus, *SERVER_CPUSET], logs=True,
                                           client_cpus=CLIENT_CPUS, direct=True, deadline_s=300))
            runs[label].append(r)
            print(f"==> quota, round {i + 1}, {label}: {r['workers_started']} worker(s) started, "
                  f"{r['load'][0]['rps']:,.0f} requests/s", flush=True)
    return {label: {"cpus": cpus, "workers_set": workers, "workers_started": [x["workers_started"] for x in runs[label]],
                    "rps": [x["load"][0]["rps"] for x in runs[label]],
                    "rps_median": statistics.median(x["load"][0]["rps"] for x in runs[label]),
                    "p50_ms": statistics.median(x["load"][0]["p50_ms"] for x in runs[label])}
            for label, cpus, workers in quota_configs()}


def quota_summary(results):
    default = results["--cpus 1, default"]["rps_median"]
    best_workers = max(QUOTA_WORKERS, key=lambda w: results[f"--cpus 1, {w} worker(s)"]["rps_median"])
    best = results[f"--cpus 1, {best_workers} worker(s)"]["rps_median"]
    return {"default_rps": default, "best_workers": best_workers, "best_rps": best, "ratio": default / best}


def quota_table(results, summary):
    header = [f"{OURS}, {QUOTA_CLIENTS} clients", "workers started", "requests/s", "p50 ms", "each round"]
    lines = [[label, "/".join("?" if w is None else str(w) for w in sorted(set(r["workers_started"]))),
              f"{r['rps_median']:,.0f}", f"{r['p50_ms']:.1f}", " ".join(f"{x:,.0f}" for x in r["rps"])]
             for label, r in results.items()]
    return (grid(header, lines) + f"\ndefault / best of {{1, 2, 4}} workers under --cpus 1: {summary['ratio']:.2f}x "
            f"({summary['default_rps']:,.0f} against {summary['best_rps']:,.0f} with {summary['best_workers']} worker(s))")


# --- 3. time to the first chunk of a streamed answer ---------------------------------------------

def stream_once(port):
    """One streamed request on a connection opened before the clock starts: its status, the
    seconds from sending it to the first body bytes and to the last, and how the body came."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.connect()
    try:
        started = time.perf_counter()
        conn.request("POST", "/invocations", body=STREAM_BODY,
                     headers={"Content-Type": STREAM_TYPE, "Accept": STREAM_TYPE})
        resp = conn.getresponse()
        headers_s = time.perf_counter() - started
        first = last = None
        reads, body = 0, b""
        while True:
            data = resp.read1(65536)  # what has arrived: one chunk of a chunked answer at most
            if not data:
                break
            last = time.perf_counter() - started
            first = last if first is None else first
            reads += 1
            body += data
        return {"status": resp.status, "headers_s": headers_s, "first_byte_s": first, "last_byte_s": last,
                "reads": reads, "bytes": len(body), "chunked": resp.getheader("Transfer-Encoding") == "chunked",
                "pieces_whole": body == b"".join(f"piece {i}\n".encode() for i in range(PIECES))}
    finally:
        conn.close()


def streams(count):
    def measure(port):
        answers = [stream_once(port) for _ in range(count)]
        ok = [a for a in answers if a["status"] == 200 and a["first_byte_s"] is not None]
        return {"requests": count, "statuses": sorted({a["status"] for a in answers}),
                "ok": len(ok), "chunked": all(a["chunked"] for a in ok) if ok else None,
                "pieces_whole": all(a["pieces_whole"] for a in ok) if ok else None,
                "reads_median": statistics.median(a["reads"] for a in ok) if ok else None,
                "first_byte_s": statistics.median(a["first_byte_s"] for a in ok) if ok else None,
                "last_byte_s": statistics.median(a["last_byte_s"] for a in ok) if ok else None,
                "headers_s": statistics.median(a["headers_s"] for a in ok) if ok else None}
    return measure


def streaming(model, count):
    results = {}
    for image in (OURS, MXNET):
        r = serving.bench(image, model, READY_BODY, STREAM_TYPE, [], 0, [], deadline_s=300, measure=streams(count))
        results[image] = r["measured"]
        m = r["measured"]
        print(f"==> streaming, {image}: statuses {m['statuses']}, first bytes {m['first_byte_s']} s, "
              f"last {m['last_byte_s']} s", flush=True)
    return results


def streaming_table(results, count):
    header = [f"{PIECES} pieces {PIECE_GAP_S} s apart, {count} requests", "status", "first bytes ms", "last bytes ms",
              "reads", "how it came"]
    lines = []
    for image, m in results.items():
        name = f"ours: {image.split('/')[-1].split(':')[0]}"
        if not m["ok"]:
            lines.append([name, "/".join(map(str, m["statuses"])), "-", "-", "-", "no 200 answer"])
            continue
        how = "chunked" if m["chunked"] else "whole (Content-Length)"
        lines.append([name, "/".join(map(str, m["statuses"])), f"{1000 * m['first_byte_s']:.0f}",
                      f"{1000 * m['last_byte_s']:.0f}", f"{m['reads_median']:.0f}",
                      how + ("" if m["pieces_whole"] else ", body differs")])
    # TorchServe's and MMS's handler services take a handler's answer as one body per request (a
    # list of one response per batch item): neither has a contract where the handler returns an
    # iterator that the server streams, so there is nothing of theirs to time here.
    for name, _, _ in PEERS:
        lines.append([name, "n/a", "n/a", "n/a", "n/a", "no handler-returns-a-generator contract"])
    return grid(header, lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="one repeat, 200 requests, 5 streamed requests, cold start of pytorch-horovod-cpu and TorchServe only")
    ap.add_argument("--repeats", type=int, default=None, help="fresh containers (rounds) per configuration; default 3")
    ap.add_argument("--requests", type=int, default=None, help="requests per quota configuration; default 1000")
    ap.add_argument("--streams", type=int, default=None, help="streamed requests per image; default 20")
    args = ap.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    requests = args.requests or (200 if args.quick else 1000)
    count = args.streams or (5 if args.quick else 20)

    servers = serving_images(args.quick)
    builds = {OURS: "python -m smimages.build pytorch-horovod-cpu", MXNET: "python -m smimages.build mxnet",
              **{image: build for _, image, build in PEERS}}
    needed = {OURS, MXNET} | {image for _, image, _ in servers if image in builds}  # what make bench-serving builds
    missing = sorted(image for image in needed if not exists(image))
    for image in missing:
        print(f"{image} is missing: build it with `{builds[image]}` (or run `make bench-serving`)", file=sys.stderr)
    if missing:
        return 2
    for name, image, _ in servers:  # other serving images of ours (pytorch-horovod-gpu) are left out unless built
        if not exists(image):
            print(f"cold start: {image} is not built, left out (`python -m smimages.build {name}` builds it)",
                  file=sys.stderr)
    servers = [s for s in servers if exists(s[1])]

    with contextlib.ExitStack() as stack:
        torch_model, mxnet_model, stream_model, tool = (stack.enter_context(tempfile.TemporaryDirectory())
                                                        for _ in range(4))
        os.chmod(tool, 0o755)
        make_model(torch_model, tool)
        if any(kind == "mxnet" for _, _, kind in servers):
            make_mxnet_model(mxnet_model, tool)
        make_streaming_model(stream_model)
        cold = cold_start(servers, {"torch": torch_model, "mxnet": mxnet_model}, repeats)
        quotas = quota(torch_model, repeats, requests)
        streamed = streaming(stream_model, count)
    summary = quota_summary(quotas)

    print(f"\n1. serverless-shaped cold start: docker run --memory 2g --memory-swap 2g, no GPU; medians of {repeats} "
          "fresh container(s) per server, the servers taking turns; workers: what each server started by default")
    print(cold_start_table(cold))
    print(f"\n2. CPU quota: {OURS} under docker run --cpus 1 (and 0.5) {' '.join(SERVER_CPUSET)}, {QUOTA_CLIENTS} "
          f"clients on CPU(s) {sorted(CLIENT_CPUS or _CPUS)}, {requests} requests per container, medians of {repeats} "
          "round(s) of the configurations taking turns")
    print(quota_table(quotas, summary))
    print(f"\n3. streamed answer: transform_fn returns a generator of {PIECES} pieces {PIECE_GAP_S} s apart; time from "
          f"sending the request to the first and last body bytes, medians of {count} requests")
    print(streaming_table(streamed, count))

    out = REPO / "out" / "bench-serving-placements.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"quick": args.quick, "repeats": repeats, "requests": requests, "streams": count,
                               "content_type": CONTENT_TYPE, "accept": ACCEPT, "serverless_run_args": SERVERLESS,
                               "cold_start": cold, "quota": quotas, "quota_summary": summary,
                               "streaming": streamed}, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
