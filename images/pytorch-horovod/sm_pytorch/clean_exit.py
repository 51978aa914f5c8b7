"""A clean interpreter exit for scripts that never call torch.distributed.destroy_process_group().

Every interpreter in the image registers `at_exit` when it starts (a line in
`sm_pytorch_clean_exit.pth`, see PTH_LINE), and imports this module only at exit, when torch was
imported. The handler runs after the script's own atexit handlers and
after Python has joined its non-daemon threads, while the interpreter is still whole.

Why: a gloo worker thread (`pt_gloo_runloop`) that has just finished a collective drops the work
it ran, and with it the tensors the script handed in. A tensor whose Python object died first
(`dist.all_reduce(p.grad.data)` makes one) still owns that object, so the worker takes the GIL to
free it. When the script's main thread ends right after its last collective, it can enter
interpreter finalization before the worker has had the GIL. Python 3.11 then ends the worker with
pthread_exit() inside take_gil(); the forced unwind meets the work's noexcept destructor and the
C++ runtime calls std::terminate(): "terminate called without an active exception", SIGABRT,
exit 134, after training succeeded. (gdb: pt_gloo_runloop at runLoop -> ~AsyncAllreduceWork ->
TensorImpl::decref_pyobject -> gil_scoped_acquire -> take_gil -> PyThread_exit_thread ->
_Unwind_ForcedUnwind -> std::terminate, while the main thread is in Py_FinalizeEx.) The same
worker, freed by a DDP Reducer's destructor that holds the GIL, is the deadlock that the example's
careful ending avoids.

What it does: while any gloo worker thread is still busy (not parked idle on its work queue), it
sleeps in steps of 2 ms, which releases the GIL so the worker can finish freeing its work; then it
returns and finalization goes on as always. It never ends a process group, never talks to other
ranks, prints nothing, and changes neither the exit code nor what the script wrote. The wait is
bounded by SM_PYTORCH_EXIT_WAIT_SECONDS (default 30; 0 turns the handler off); a worker still busy
then (an async collective the script never waited for, whose peer never comes) is left as before.
"""

import os
import time

GLOO_WORKER = "pt_gloo_runloop"  # the thread name ProcessGroupGloo gives its workers
FUTEX = {"x86_64": 202, "aarch64": 98}.get(os.uname().machine)  # the futex syscall's number
FUTEX_WAIT_BITSET = 9  # what pthread_cond_wait() waits with (an idle worker on its queue)
FUTEX_CMD_MASK = ~(128 | 256)  # FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME
STEP_S = 0.002
UNKNOWN_GRACE_S = 0.2  # where thread states cannot be read: one fixed grace period
DEFAULT_WAIT_S = 30.0


def wait_limit():
    raw = os.environ.get("SM_PYTORCH_EXIT_WAIT_SECONDS", "")
    try:
        return max(float(raw), 0.0) if raw.strip() else DEFAULT_WAIT_S
    except ValueError:
        return DEFAULT_WAIT_S


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def gloo_workers(task_dir="/proc/self/task"):
    """Thread ids of this process's gloo worker threads."""
    try:
        tids = os.listdir(task_dir)
    except OSError:
        return []
    return [tid for tid in tids if _read(f"{task_dir}/{tid}/comm") == GLOO_WORKER]


def idle(syscall_line):
    """Whether a thread, from its /proc/<tid>/syscall line, is parked in an untimed condition
    wait (a gloo worker waiting for work). True/False, or None when it cannot be told."""
    if not syscall_line or FUTEX is None:
        return None
    fields = syscall_line.split()
    if fields[0] == "running":
        return False
    try:
        number, op, timeout = int(fields[0]), int(fields[2], 16), int(fields[4], 16)
    except (IndexError, ValueError):
        return None
    # Busy: running, waiting for the GIL (a timed condition wait), for a mutex (FUTEX_WAIT) or
    # anything else.
    return number == FUTEX and op & FUTEX_CMD_MASK == FUTEX_WAIT_BITSET and timeout == 0


def busy_workers(task_dir="/proc/self/task"):
    """gloo worker threads that are not parked idle; None when their state cannot be read."""
    busy = []
    for tid in gloo_workers(task_dir):
        state = idle(_read(f"{task_dir}/{tid}/syscall"))
        if state is None:
            return None
        if not state:
            busy.append(tid)
    return busy


def settle(limit_s=None, task_dir="/proc/self/task", sleep=time.sleep, clock=time.monotonic):
    """Release the GIL until no gloo worker is busy, for at most limit_s. -> seconds waited."""
    limit_s = wait_limit() if limit_s is None else limit_s
    start = clock()
    if limit_s <= 0:
        return 0.0
    while True:
        busy = busy_workers(task_dir)
        if busy == []:
            return clock() - start
        if busy is None:  # states unreadable: one short grace period, then go on
            sleep(min(UNKNOWN_GRACE_S, limit_s))
            return clock() - start
        if clock() - start >= limit_s:
            return clock() - start
        sleep(STEP_S)


def at_exit():
    """The atexit handler (see sm_pytorch_clean_exit.pth): never raises, never prints."""
    try:
        settle()
    except Exception:  # noqa: BLE001 - an exit hook must never change how a script ends
        pass


# One line for a .pth file in site-packages: every interpreter in the image registers the handler
# when it starts, before the script runs (atexit calls handlers last in, first out, so it runs
# after every handler the script registers). This module is imported only at exit, only when torch
# was imported and the wait is not turned off (SM_PYTORCH_EXIT_WAIT_SECONDS=0 leaves exit exactly
# as it is without the image's handler).
PTH_LINE = ('import atexit, os, sys; atexit.register(lambda: "torch" in sys.modules and '
            'os.environ.get("SM_PYTORCH_EXIT_WAIT_SECONDS", "").strip() not in ("0", "0.0") and '
            '__import__("sm_pytorch.clean_exit", fromlist=["at_exit"]).at_exit())')
