"""Serving figures for any serving image, measured the same way every time, on loopback only:
time from `docker run` to the first 200 on /ping (and to the first answered /invocations),
/invocations latency p50/p99 and requests per second at 1 and 16 concurrent clients (a bounded
number of requests each), idle memory, and `docker stop` time.

    python -m smimages.bench.serving IMAGE MODEL_DIR --body-file REQUEST [--content-type text/csv]
                            [--requests 2000] [--clients 1 16] [--env KEY=VALUE ...]

MODEL_DIR is mounted at /opt/ml/model as SageMaker does. Prints a table and writes
out/bench-serving.json. Clients are separate processes (one connection each), so the client's
own interpreter does not cap the figures.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from smimages.catalog import DOCKER
from smimages.catalog import ROOT as REPO


def docker(*args):
    return subprocess.run([DOCKER, *args], check=True, capture_output=True, text=True).stdout.strip()


def request(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def connect(target, timeout):
    """An HTTP connection to `target`: a port published on 127.0.0.1, or (address, port), the
    container's own address on the bridge (no docker-proxy between: see bench's `direct`)."""
    host, port = target if isinstance(target, tuple) else ("127.0.0.1", target)
    return http.client.HTTPConnection(host, port, timeout=timeout)


def first_200(port, method, path, body, headers, deadline, seen=None):
    """The time of the first 200 on `path`; `seen` (a list) gets each answer's status before it
    (None where the connection failed)."""
    while time.monotonic() < deadline:
        status = None
        try:
            conn = connect(port, 5)
            status = request(conn, method, path, body, headers)
            if status == 200:
                return time.monotonic()
        except OSError:
            pass
        if seen is not None:
            seen.append(status)
        time.sleep(0.005)
    raise SystemExit(f"no 200 on {path} before the deadline")


def client(args):
    """One client: `count` POSTs to `path` one after another; returns their latencies in seconds."""
    port, body, headers, count, path = args
    conn = connect(port, 60)
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        status = request(conn, "POST", path, body, headers)
        latencies.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
    return latencies


def load(port, body, headers, clients, total, targets=(("/invocations", {}),), client_cpus=None):
    """`targets` ((path, extra headers) pairs): client k sends to the (k mod len)-th, so clients
    spread over them (a multi-model endpoint's models). `client_cpus`: the CPUs the client
    processes run on (else any)."""
    per_client = max(1, total // clients)

    def jobs(count):
        return [(port, body, {**headers, **extra}, count, path)
                for path, extra in (targets[k % len(targets)] for k in range(clients))]

    pin = (os.sched_setaffinity, (0, client_cpus)) if client_cpus else (None, ())
    with multiprocessing.Pool(clients, *pin) as pool:
        pool.map(client, jobs(5))  # warm-up: connections, caches
        started = time.perf_counter()
        results = pool.map(client, jobs(per_client))
        elapsed = time.perf_counter() - started
    latencies = sorted(x for r in results for x in r)
    return {"clients": clients, "requests": len(latencies), "rps": len(latencies) / elapsed,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}


def memory_mib(container):
    usage = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", container).split("/")[0].strip()
    number, unit = float(usage[:-3]), usage[-3:]
    return number * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]


def probe(port, body, headers):
    """The status /invocations answers (None where the connection failed)."""
    try:
        return request(connect(port, 60), "POST", "/invocations", body, headers)
    except OSError:
        return None


def bench(image, model_dir, body, content_type, clients, total, env, *, accept=None, probes=None, deadline_s=180,
          run_args=(), measure=None, logs=False, client_cpus=None, direct=False):
    """`accept` defaults to `content_type`; `probes` ({name: (content type, body)}) are sent once
    after the load levels, their statuses kept under "probes". `run_args` go to `docker run` before
    the image (limits as a placement sets them: ["--memory", "2g", "--cpus", "1"]); `measure`, a
    function of the port, is called after the probes and its answer kept under "measured"; with
    `logs`, the container's log (stdout and stderr, after `docker stop`) is kept under "logs";
    `client_cpus`: the CPUs the load's client processes run on. `direct`: the load goes to the
    container's own address, not through the published port's docker-proxy, a host process that
    would take CPU time from the server's own CPU (`measure` still gets the published port).
    No `clients` (an empty list): no load levels."""
    headers = {"Content-Type": content_type, "Accept": accept or content_type}
    env_args = [a for kv in env for a in ("-e", kv)]
    started = time.monotonic()
    container = docker("run", "-d", "-p", "127.0.0.1::8080", "-v", f"{Path(model_dir).resolve()}:/opt/ml/model:ro",
                       *env_args, *run_args, image, "serve")
    try:
        port = int(docker("port", container, "8080/tcp").splitlines()[0].rsplit(":", 1)[1])
        target = (docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", container), 8080) if direct else port
        deadline = started + deadline_s
        ping = first_200(target, "GET", "/ping", None, {}, deadline) - started
        seen = []  # what /invocations answered from the first /ping 200 on, until its own first 200
        answer = first_200(target, "POST", "/invocations", body, headers, deadline, seen) - started
        time.sleep(2)
        idle = memory_mib(container)
        loads = [load(target, body, headers, c, total, client_cpus=client_cpus) for c in clients]
        statuses = {name: probe(target, b, {**headers, "Content-Type": ct}) for name, (ct, b) in (probes or {}).items()}
        measured = measure(port) if measure else None
        stop_started = time.monotonic()
        docker("stop", container)
        stop = time.monotonic() - stop_started
        exit_code = int(docker("inspect", "-f", "{{.State.ExitCode}}", container))
        log = subprocess.run([DOCKER, "logs", container], capture_output=True, text=True) if logs else None
    finally:
        subprocess.run([DOCKER, "rm", "-f", container], capture_output=True)
    extra = {"measured": measured} if measure else {}
    if log is not None:
        extra["logs"] = log.stdout + log.stderr
    return {"image": image, "first_ping_200_s": ping, "first_answer_s": answer, "idle_memory_mib": idle,
            "stop_s": stop, "stop_exit_code": exit_code, "load": loads, "body_bytes": len(body),
            # the status of the first /invocations sent once /ping said 200, and how many answers
            # (by status; "None": no connection) came before /invocations' own first 200
            "first_invocation_status": seen[0] if seen else 200,
            "invocations_before_first_200": {str(k): n for k, n in Counter(seen).items()}, "probes": statuses,
            **extra}


def medians(runs):
    """One result like each of `runs` (bench() results), every measured figure (a float: seconds,
    MiB) the median across them; counts, statuses and exit codes (ints or None) are the first run's."""
    first = runs[0]
    merged = {k: statistics.median(r[k] for r in runs) if isinstance(v, float) else v for k, v in first.items()}
    merged["load"] = [{k: statistics.median(r["load"][i][k] for r in runs) for k in level}
                      for i, level in enumerate(first["load"])]
    merged["repeats"] = len(runs)
    return merged


def table(r):
    rows = [("time to first /ping 200", f"{r['first_ping_200_s']:.2f} s"),
            ("time to first /invocations 200", f"{r['first_answer_s']:.2f} s")]
    for x in r["load"]:
        rows += [(f"{x['clients']:>2} client(s): p50 / p99 latency", f"{x['p50_ms']:.2f} / {x['p99_ms']:.2f} ms"),
                 (f"{x['clients']:>2} client(s): requests per second", f"{x['rps']:,.0f} ({x['requests']} requests)")]
    rows += [("idle memory", f"{r['idle_memory_mib']:.0f} MiB"),
             ("docker stop", f"{r['stop_s']:.2f} s (exit code {r['stop_exit_code']})")]
    width = max(len(k) for k, _ in rows)
    return "\n".join([f"serving bench: {r['image']} ({r['body_bytes']} byte request)"] +
                     [f"  {k:<{width}}  {v}" for k, v in rows])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image")
    ap.add_argument("model_dir")
    ap.add_argument("--body-file", required=True, help="the request body sent to /invocations")
    ap.add_argument("--content-type", default="text/csv")
    ap.add_argument("--requests", type=int, default=2000, help="requests per load level")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the container")
    args = ap.parse_args()
    result = bench(args.image, args.model_dir, Path(args.body_file).read_bytes(), args.content_type,
                   args.clients, args.requests, args.env)
    print(table(result))
    out = REPO / "out" / "bench-serving.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
