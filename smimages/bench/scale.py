"""Scale: what adding a host costs a job that launches several (distribution mpi, 2 processes per
host, one trivial all-reduce), measured on one machine with every host a container on one Docker
bridge (the test harness's run_job).

    python -m smimages.bench.scale [--hosts 2 4 8] [--images pytorch-horovod-cpu mxnet] [--repeat 3]
                                   [--out out/bench-scale.json] [--before IMAGE=TAG ...]

The job's script prints time.time() at its start, right after its first all-reduce returns and
at its exit (every rank's lines reach the first host's log through mpirun); docker says when each
container started and finished; all share one clock. Per job:
- spread: the first container's start to the last's (the harness starts them together, as SageMaker does);
- start -> script: the first container's start to the last rank's script start (the launch:
  hosts waiting for each other, SSH key exchange, mpirun spawning its daemons over SSH);
- start -> first all-reduce: the first container's start to the last rank's return from its
  first all-reduce (the launch, then importing the framework and Horovod in every process);
- teardown: the last rank's exit to the last container's exit.
(out/bench-scale.json also holds, for every job, the last rank's return from its imports and from
hvd.init(), on the same scale as start -> first all-reduce.)
Medians of `--repeat` jobs each. `--before pytorch-horovod-cpu=sm-images/pytorch-horovod-cpu:old`
measures an earlier build too, each of its jobs beside the current build's, and shows both.
"""

import argparse
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from smimages.catalog import ROOT as REPO
from smimages.catalog import discover
from smimages.testing.harness import MLJob, run_command, run_job, write_tree

PROCESSES = 2
# Every host's ranks share this machine's CPUs, which Open MPI cannot know (each host says it has
# PROCESSES slots): ranks that wait in MPI_Init spin and starve those still importing, which cost
# 30 to 90 s at 4 hosts here. Open MPI's own setting for an oversubscribed node keeps that out.
MPI_OPTIONS = "--mca mpi_yield_when_idle 1"
JOB_TIMEOUT_S = 600
STAMPS = re.compile(r"SCALE-BENCH (start|imported|init|first|exit) rank (\d+) at (\d+\.\d+)")
HEAD = """import os, time
RANK = os.environ.get("OMPI_COMM_WORLD_RANK", "?")
print(f"SCALE-BENCH start rank {RANK} at {time.time():.6f}", flush=True)
"""
STAMP = """print(f"SCALE-BENCH {} rank {{RANK}} at {{time.time():.6f}}", flush=True)\n"""
TAIL = """print(f"SCALE-BENCH first rank {RANK} at {time.time():.6f}", flush=True)
hvd.shutdown()
print(f"SCALE-BENCH exit rank {RANK} at {time.time():.6f}", flush=True)
"""
# One all-reduce of one number, per framework; each checks its sum so a broken job cannot time well.
SCRIPTS = {
    "pytorch-horovod-cpu": ("horovod.torch", HEAD + """import torch
import horovod.torch as hvd
""" + STAMP.format("imported") + """hvd.init()
""" + STAMP.format("init") + """assert hvd.allreduce(torch.ones(1), op=hvd.Sum).item() == hvd.size()
""" + TAIL),
    "mxnet": ("horovod.mxnet", HEAD + """import mxnet as mx
import horovod.mxnet as hvd
""" + STAMP.format("imported") + """hvd.init()
""" + STAMP.format("init") + """assert hvd.allreduce(mx.nd.ones((1,)), average=False).asnumpy()[0] == hvd.size()
""" + TAIL),
}


def docker_time(text):
    """docker's RFC 3339 time (nanoseconds, Z) -> seconds since the epoch."""
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))


class Clock:
    """Each container's start and finish as docker records them: read once all are started, and
    as each exits (before run_job removes it; the moment its wait returns where it is gone)."""

    def __init__(self):
        self.started, self.finished, self.threads, self.image_id = {}, {}, [], None

    def on_start(self, tracked):
        for host, t in tracked.items():
            t.container.reload()
            self.image_id = t.container.attrs["Image"]
            self.started[host] = docker_time(t.container.attrs["State"]["StartedAt"])
            thread = threading.Thread(target=self._finish, args=(host, t.container), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _finish(self, host, container):
        try:
            container.wait(timeout=JOB_TIMEOUT_S + 60)
            self.finished[host] = time.time()
            container.reload()
            self.finished[host] = docker_time(container.attrs["State"]["FinishedAt"])
        except Exception:  # noqa: BLE001 - removed already (the wait's time stands), or the job failed and says so
            pass

    def join(self):
        for thread in self.threads:
            thread.join(timeout=30)


def one_job(image, tag, hosts):
    """The figures of one job of `hosts` hosts x PROCESSES processes."""
    names = tuple(f"algo-{i + 1}" for i in range(hosts))
    with tempfile.TemporaryDirectory() as tmp:
        job = MLJob(Path(tmp), hosts=names, hyperparameters={
            "sagemaker_program": "scale.py", "sagemaker_submit_directory": "/opt/ml/code",
            "sagemaker_mpi_enabled": "true", "sagemaker_mpi_num_of_processes_per_host": str(PROCESSES),
            "sagemaker_mpi_custom_mpi_options": MPI_OPTIONS})
        for host in names:
            write_tree(job.tree(host) / "code", {"scale.py": SCRIPTS[image][1]})
        clock = Clock()
        load = os.getloadavg()[0]
        results = run_job(tag, job, timeout_s=JOB_TIMEOUT_S, on_start=clock.on_start)
        clock.join()
    bad = [r for r in results if r.exit_code != 0 or r.timed_out]
    if bad:
        raise JobFailed(f"{image}, {hosts} hosts: the job failed: "
                        + "; ".join(f"{r.host}: {r.failure_first_line or f'exit {r.exit_code}'}" for r in bad),
                        "\n".join(f"--- {r.host}\n{r.logs[-3000:]}" for r in bad))
    stamps = {"start": {}, "imported": {}, "init": {}, "first": {}, "exit": {}}
    for what, rank, at in STAMPS.findall(results[0].logs):
        stamps[what][int(rank)] = float(at)
    if any(len(s) != hosts * PROCESSES for s in stamps.values()):
        raise JobFailed(f"{image}, {hosts} hosts: not every rank reported", results[0].logs[-3000:])
    if len(clock.finished) != hosts:
        raise JobFailed(f"{image}, {hosts} hosts: no finish time for {set(names) - set(clock.finished)}", "")
    first_start = min(clock.started.values())
    return {"spread_s": max(clock.started.values()) - first_start,
            "to_script_s": max(stamps["start"].values()) - first_start,
            "to_imported_s": max(stamps["imported"].values()) - first_start,
            "to_init_s": max(stamps["init"].values()) - first_start,
            "to_first_allreduce_s": max(stamps["first"].values()) - first_start,
            "teardown_s": max(clock.finished.values()) - max(stamps["exit"].values()),
            "load_1min": load, "image_id": clock.image_id}


class JobFailed(RuntimeError):
    def __init__(self, cause, logs):
        super().__init__(cause)
        self.logs = logs


def one_job_or_again(image, tag, hosts, failures):
    """one_job; a job that fails is said, counted in `failures` and run once more (the machine is
    shared: a failure is a finding, but one should not lose the whole run)."""
    try:
        return one_job(image, tag, hosts)
    except JobFailed as e:
        failures.append(str(e))
        print(f"{e}\n{e.logs}\n(running it once more)", file=sys.stderr, flush=True)
    try:
        return one_job(image, tag, hosts)
    except JobFailed as e:
        raise SystemExit(f"{e}\n{e.logs}") from None


def has_horovod(tag, module):
    code, _ = run_command(tag, ["python", "-c", f"import {module}"], timeout_s=120)
    return code == 0


def measure(image, tags, host_counts, repeat):
    """{tag: one row per host count} for each of `tags` (builds of `image`), each figure the median
    of `repeat` jobs; sizes and builds interleaved, so that what else the machine does hits all alike."""
    runs = {(t, h): [] for t in tags for h in host_counts}
    failures = {key: [] for key in runs}
    for i in range(repeat):
        for hosts in host_counts:
            for tag in tags:
                runs[tag, hosts].append(one_job_or_again(image, tag, hosts, failures[tag, hosts]))
                print(f"{tag}, {hosts} hosts, run {i + 1}/{repeat}: {runs[tag, hosts][-1]}", file=sys.stderr, flush=True)
    result = {}
    for tag in tags:
        rows = []
        for hosts in host_counts:
            done = runs[tag, hosts]
            row = {"image": image, "tag": tag, "hosts": hosts, "processes": hosts * PROCESSES, "runs": done,
                   "failed_jobs": failures[tag, hosts]}
            row.update({k: statistics.median(r[k] for r in done) for k in done[0] if k.endswith("_s")})
            rows.append(row)
        result[tag] = add_ratios(rows)
    return result


def add_ratios(rows):
    """Each row's launch and first all-reduce over those of the same build's fewest hosts."""
    for row in rows:
        first = min((r for r in rows if r["tag"] == row["tag"]), key=lambda r: r["hosts"])
        row["script_ratio_to_first"] = row["to_script_s"] / first["to_script_s"]
        row["ratio_to_first"] = row["to_first_allreduce_s"] / first["to_first_allreduce_s"]
    return rows


FIGURES = (("to_script_s", ".1f"), ("script_ratio_to_first", ".2f"), ("to_first_allreduce_s", ".1f"),
           ("ratio_to_first", ".2f"), ("teardown_s", ".1f"))


def print_table(rows, before=()):
    """One markdown table; with `before` (rows of an earlier build), its figures beside these."""
    before = {(r["image"], r["hosts"]): r for r in before}
    first = min((r["hosts"] for r in rows), default=0)
    cols = ["image", "hosts", "processes", "spread (s)", "start→script (s)", f"ratio to {first} hosts",
            "start→first all-reduce (s)", f"ratio to {first} hosts", "teardown (s)"]
    if before:
        cols[3:] = [f"{c}: before → after" for c in cols[3:]]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        b = before.get((r["image"], r["hosts"]))
        cells = [r["image"], str(r["hosts"]), str(r["processes"])]
        for key, fmt in (("spread_s", ".1f"), *FIGURES):
            cells.append(f"{b[key]:{fmt}} → {r[key]:{fmt}}" if b else f"{r[key]:{fmt}}")
        print("| " + " | ".join(cells) + " |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--images", nargs="+", default=list(SCRIPTS), choices=list(SCRIPTS))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench-scale.json")
    ap.add_argument("--before", action="append", default=[], metavar="IMAGE=TAG",
                    help="an earlier build of IMAGE, measured interleaved with the current one and shown beside it")
    ap.add_argument("--show", type=Path, metavar="JSON", help="print the table of an earlier run's JSON, measure nothing")
    args = ap.parse_args(argv)
    if args.show:
        shown = json.loads(args.show.read_text())
        return print_table(add_ratios(shown["rows"]), add_ratios(shown["before"]))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped bench still removes its containers
    catalog = discover()
    earlier = dict(b.split("=", 1) for b in args.before)
    rows, before, skipped = [], [], {}
    for image in args.images:
        tag, module = catalog[image].tag, SCRIPTS[image][0]
        if not has_horovod(tag, module):
            skipped[image] = f"{tag} cannot import {module}: no Horovod in it yet, so no figures"
            print(f"{image}: {skipped[image]}", file=sys.stderr, flush=True)
            continue
        measured = measure(image, [t for t in (earlier.get(image), tag) if t], sorted(args.hosts), args.repeat)
        rows += measured[tag]
        before += measured.get(earlier.get(image), [])
    print_table(rows, before)
    for image, why in skipped.items():
        print(f"{image}: {why}")
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({"processes_per_host": PROCESSES, "mpi_options": MPI_OPTIONS, "repeat": args.repeat,
                                    "cpus": os.cpu_count(), "rows": rows, "before": before, "skipped": skipped},
                                   indent=2) + "\n")
    print(f"(all figures in {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out})")


if __name__ == "__main__":
    main()
