"""`python3 -m smimages.gpu_check` (make gpu-check): every check in turn, each line printed as it
ends, then the total; the exit code is 1 when a check that ran failed. With a child's name as the
first argument (`_env`, `_nccl_probe`, ...: children.CHILDREN) it is that child process instead."""

import os
import sys
import tempfile
import time
from pathlib import Path

from smimages.gpu_check.children import CHILDREN
from smimages.gpu_check.context import Context
from smimages.gpu_check.ddp import check_ddp
from smimages.gpu_check.environment import check_environment
from smimages.gpu_check.horovod import check_horovod
from smimages.gpu_check.launch import BUDGET_S, ROOT, Budget, budget_s
from smimages.gpu_check.nccl import check_nccl
from smimages.gpu_check.report import FAIL, SKIP, Result, exit_code, format_report
from smimages.gpu_check.serve import check_serve

# After the environment check, whose findings they need.
CHECKS = (("nccl", check_nccl), ("ddp", check_ddp), ("serve", check_serve), ("horovod", check_horovod))


def main():
    started = time.monotonic()
    logs = Path(os.environ.get("GPU_CHECK_LOGS") or ROOT / "out" / "gpu-check")
    logs.mkdir(parents=True, exist_ok=True)
    budget = Budget(float(os.environ.get("GPU_CHECK_BUDGET_S") or BUDGET_S))
    print(f"gpu-check: {sys.executable} in {ROOT}; step logs in {logs}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        ctx = Context(budget, logs, Path(tmp))
        results.append(check_environment(ctx)[0])
        _emit(results[-1])
        for name, check in CHECKS:
            if ctx.info is None:
                result = Result(name, SKIP, "the environment could not be probed (see above)")
            elif budget.timeout(60) < 20:
                result = Result(name, SKIP, f"out of time (GPU_CHECK_BUDGET_S={budget_s()})")
            else:
                try:
                    result = check(ctx)
                except Exception as e:  # noqa: BLE001 - a bug in one check is that check's failure
                    result = Result(name, FAIL, f"the check itself failed: {type(e).__name__}: {e}")
            results.append(result)
            _emit(result)
    print(format_report(results, time.monotonic() - started)[-1], flush=True)
    return exit_code(results)


def _emit(result):
    for line in format_report([result], 0)[:-1]:
        print(line, flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in CHILDREN:
        CHILDREN[sys.argv[1]](*sys.argv[2:])
    else:
        sys.exit(main())
