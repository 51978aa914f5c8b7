"""The nccl check: torchrun, one rank per GPU, an all_reduce checked and its bus bandwidth timed."""

import time

from smimages.gpu_check.launch import run, torchrun
from smimages.gpu_check.report import PASS, SKIP, Result, failed, marked


def check_nccl(ctx):
    started = time.monotonic()
    n = ctx.gpus
    if not n:
        return Result("nccl", SKIP, "no CUDA GPU: NCCL needs one per rank")
    if not ctx.info["nccl_available"]:
        return failed("nccl", started, "torch.distributed.is_nccl_available() is False in this torch build")
    timeout = ctx.budget.timeout(150)
    r = run(torchrun(n, "-m", "smimages.gpu_check", "_nccl_probe"), timeout, ctx.logs / "nccl.log")
    got = marked(r.output)
    if not r.ok or got is None:
        return failed("nccl", started, f"torchrun of {n} rank(s) {r.outcome(timeout)}", r)
    if not got["sum_ok"]:
        return failed("nccl", started, f"all_reduce over {n} rank(s) gave {got['sum']}, expected {got['expected']}", r)
    figures = (f", {got['size_mb']:.0f} MB all_reduce: {got['ms']:.2f} ms, bus bandwidth {got['busbw_gbs']:.1f} GB/s"
               if n > 1 else " (one rank: no traffic between GPUs to measure)")
    return Result("nccl", PASS, f"torchrun, {n} rank(s) on {', '.join(got['devices'])}: all_reduce correct{figures}",
                  time.monotonic() - started)
