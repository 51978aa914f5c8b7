"""`make seeds`: replays each seed notebook's SageMaker calls (examples/seeds/) against our images,
with SDK local mode and a real S3 API on this machine (moto's server), no AWS account.

    python -m smimages.seeds [SEED ...]      # e.g. 001 004; all by default

Each replay runs under its SDK's own environment (.venv-sdk2 or .venv-sdk3) and ends with one
`SEED_OUTCOME {...}` line; this prints each seed's outcome as it ends, and exits non-zero if any
failed. Logs: out/seeds/<seed>.log.
"""

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from smimages.catalog import ROOT as REPO
from smimages.testing.docker_shim import folder as docker_shim
from smimages.testing.ports import free_port
from smimages.testing.s3_server import CREDENTIALS, S3Server

SEEDS_DIR = REPO / "examples" / "seeds"
OUT = REPO / "out" / "seeds"
REGION = "us-west-2"
BUCKET = "sagemaker-us-west-2-111111111111"  # what default_bucket() would name for the fake account
TIMEOUT_S = 1200


@dataclass(frozen=True)
class Seed:
    name: str
    script: str  # in examples/seeds/
    sdk: int  # 2 or 3: which SDK's environment runs it
    images: tuple  # the images it needs built

    @property
    def python(self):
        return REPO / f".venv-sdk{self.sdk}" / "bin" / "python"


SEEDS = {s.name: s for s in (
    Seed("000", "seed000_dgl_tox21.py", 2, ("dgl-rdkit-cpu",)),
    Seed("001", "seed001_pytorch_stepfunctions.py", 2, ("pytorch-horovod-cpu",)),
    Seed("002", "seed002_custom_framework.py", 2, ("custom-framework",)),
    Seed("003", "seed003_horovod_mpi.py", 2, ("pytorch-horovod-cpu",)),
    Seed("004", "seed004_mxnet_transform.py", 2, ("mxnet",)),
    Seed("sdk3", "sdk3_model_trainer.py", 3, ("custom-framework",)),
)}


@dataclass
class Replay:
    seed: Seed
    exit_code: int
    outcome: dict  # the SEED_OUTCOME line's object; {} where there was none
    log: Path
    seconds: float

    @property
    def ok(self):
        return self.exit_code == 0 and bool(self.outcome.get("ok"))

    def tail(self, chars=6000):
        return self.log.read_text(errors="replace")[-chars:]


def environment(server, workdir, serving_port):
    """What a replay runs with: the AWS settings a notebook user would have, pointed at `server`."""
    return {**os.environ, **CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1", "PYTHONUNBUFFERED": "1",
            "PATH": f"{docker_shim()}:{os.environ['PATH']}",
            "SEED_S3_ENDPOINT": server.url, "SEED_BUCKET": BUCKET, "SEED_WORKDIR": str(workdir),
            "SEED_SERVING_PORT": str(serving_port)}


def replay(seed, server, workdir, serving_port=8080, timeout_s=TIMEOUT_S, log_dir=OUT):
    """Run one seed's script to its end (killed at `timeout_s`) -> Replay."""
    server.bucket(BUCKET)
    Path(workdir).mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{seed.name}.log"
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen([str(seed.python), str(SEEDS_DIR / seed.script)], cwd=workdir, stdout=out,
                                stderr=subprocess.STDOUT, env=environment(server, workdir, serving_port))
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
            out.write(f"\nseed {seed.name} killed after {timeout_s} s\n")
    return Replay(seed, code, outcome_of(log.read_text(errors="replace")), log, time.monotonic() - started)


def outcome_of(text):
    lines = [ln for ln in text.splitlines() if ln.startswith("SEED_OUTCOME ")]
    return json.loads(lines[-1].split(" ", 1)[1]) if lines else {}


def summary(r):
    detail = {k: v for k, v in r.outcome.items() if k != "ok"}
    status = "ok" if r.ok else f"FAILED (exit {r.exit_code}; log {r.log.relative_to(REPO)})"
    return f"seed {r.seed.name} ({r.seed.script}): {status} in {r.seconds:.0f} s {json.dumps(detail, default=str)}"


def main(names):
    unknown = [n for n in names if n not in SEEDS]
    if unknown:
        print(f"unknown seed(s) {', '.join(unknown)}: choose from {', '.join(SEEDS)}", file=sys.stderr)
        return 2
    server = S3Server.start()
    print(f"==> S3 API (moto) at {server.url}, bucket {BUCKET}", flush=True)
    failed = 0
    try:
        for name in names or SEEDS:
            print(f"==> seed {name}: {SEEDS[name].script}", flush=True)
            r = replay(SEEDS[name], server, OUT / name, serving_port=free_port("127.0.0.1"))
            print(summary(r), flush=True)
            failed += not r.ok
    finally:
        server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
