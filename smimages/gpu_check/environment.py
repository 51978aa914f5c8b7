"""The environment check: python, torch and CUDA versions, the GPUs (a matmul on each checked
against the CPU), NCCL's version, the driver, and which of the packages the other checks use import.
Its findings (ctx.info) decide what the other checks do."""

import time

from smimages.gpu_check.launch import me, run
from smimages.gpu_check.report import PASS, Result, failed, marked


def check_environment(ctx):
    """(the Result, the findings or None)."""
    started = time.monotonic()
    timeout = ctx.budget.timeout(120)
    r = run(me("_env"), timeout, ctx.logs / "environment.log")
    info = marked(r.output)
    if not r.ok or info is None:
        return failed("environment", started, f"probing torch {r.outcome(timeout)}", r), info
    ctx.info = info
    gpus = info["gpus"]
    names = ", ".join(f"{g['name']} ({g['memory_gb']:.0f} GB, sm_{g['capability']})" for g in gpus) or "none"
    parts = [f"python {info['python']}, torch {info['torch']}", f"CUDA build {info['cuda_build']}",
             f"cuda.is_available() {info['cuda_available']}", f"{len(gpus)} GPU(s): {names}",
             f"NCCL {info['nccl'] or 'n/a'}"]
    if info.get("driver"):
        parts.append(f"driver {info['driver']}")
    if info.get("cuda_visible_devices") is not None:
        parts.append(f"CUDA_VISIBLE_DEVICES={info['cuda_visible_devices']}")
    absent = [m for m, error in info["modules"].items() if error]
    parts.append("not importable: " + (", ".join(absent) if absent else "none"))
    bad = [f"GPU {g['index']}: matmul {g['matmul_error']}" for g in gpus if not g["matmul_ok"]]
    if info["driver_gpus"] and not gpus:
        bad.append(f"the NVIDIA driver sees {info['driver_gpus']} GPU(s), torch none")
    if bad:
        return failed("environment", started, "; ".join(parts), detail=bad), info
    if gpus:
        parts.append("a matmul on each GPU matches the CPU's")
    return Result("environment", PASS, "; ".join(parts), time.monotonic() - started), info
