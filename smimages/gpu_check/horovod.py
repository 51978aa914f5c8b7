"""The horovod check, when horovod.torch imports: horovodrun (Gloo), one process per GPU (two
without one), an allreduce checked, and what Horovod was built with (NCCL needed on a GPU machine)."""

import sys
import time

from smimages.gpu_check.launch import me, run
from smimages.gpu_check.report import PASS, SKIP, Result, failed, marked


def check_horovod(ctx):
    started = time.monotonic()
    error = ctx.info["modules"].get("horovod.torch")
    if error:
        return Result("horovod", SKIP, f"horovod.torch is not importable here: {error}")
    n = ctx.gpus or 2
    timeout = ctx.budget.timeout(150)
    cmd = [sys.executable, "-m", "horovod.runner.launch", "--gloo", "-np", str(n), "-H", f"localhost:{n}",
           "--start-timeout", "60", *me("_hvd_probe")]
    r = run(cmd, timeout, ctx.logs / "horovod.log")
    got = marked(r.output)
    if not r.ok or got is None:
        return failed("horovod", started, f"horovodrun --gloo -np {n} {r.outcome(timeout)}", r)
    builds = f"NCCL built: {got['nccl_built']}, Gloo: {got['gloo_built']}, MPI: {got['mpi_built']}"
    if not got["sum_ok"]:
        return failed("horovod", started, f"allreduce over {n} gave {got['sum']}, expected {got['expected']}", r)
    if ctx.gpus and not got["nccl_built"]:
        return failed("horovod", started, f"Horovod has no NCCL on a GPU machine ({builds})", r)
    return Result("horovod", PASS, f"horovodrun --gloo, {n} process(es) on {got['device']}: allreduce correct; {builds}",
                  time.monotonic() - started)
