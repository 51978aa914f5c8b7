"""sm_pytorch.clean_exit's own logic (images/pytorch-horovod, installed in .venv by make test-env),
with no container: thread states from /proc/<tid>/syscall lines. The container tests are in
tests/by_image/pytorch-horovod/test_pytorch_horovod_clean_exit.py."""

from pathlib import Path

import pytest
import sm_pytorch.clean_exit as ce


def fake_task_dir(root: Path, threads):
    """/proc/self/task as {tid: (comm, syscall line)}."""
    for tid, (comm, syscall) in threads.items():
        (root / tid).mkdir(parents=True)
        (root / tid / "comm").write_text(comm + "\n")
        (root / tid / "syscall").write_text(syscall + "\n")
    return str(root)


IDLE = "202 0x55bb46c9ec60 0x189 0x0 0x0 0x0 0xffffffff 0x7fa327dc7950 0x7fa3284a3f16"  # cond wait
GIL_WAIT = "202 0x7fa3 0x89 0x0 0x7ffd5e0c 0x0 0xffffffff 0x7fa3 0x7fa3"  # timed: waiting for the GIL
MUTEX = "202 0x7fa3 0x80 0x2 0x0 0x0 0x0 0x7fa3 0x7fa3"  # FUTEX_WAIT: blocked on a mutex


def test_idle_means_an_untimed_condition_wait_only():
    if ce.FUTEX != 202:
        pytest.skip("syscall numbers of x86_64")
    assert ce.idle(IDLE) is True
    assert ce.idle(GIL_WAIT) is False and ce.idle(MUTEX) is False and ce.idle("running") is False
    assert ce.idle("0 0x3 0x7f90 0x20000 0x0 0x0 0x0 0x7ffc 0x7f90") is False  # in read()
    assert ce.idle("") is None and ce.idle(None) is None and ce.idle("garbage") is None


def test_settle_waits_for_busy_gloo_workers_only_and_is_bounded(tmp_path):
    if ce.FUTEX != 202:
        pytest.skip("syscall numbers of x86_64")
    now = [0.0]
    naps = []

    def sleep(s):
        naps.append(s)
        now[0] += s

    clock = lambda: now[0]  # noqa: E731
    idle = fake_task_dir(tmp_path / "idle", {"1": ("python", "running"), "2": ("pt_gloo_runloop", IDLE),
                                             "3": ("pt_gloo_runloop", IDLE)})
    assert ce.settle(5, idle, sleep, clock) == 0 and naps == []
    busy = fake_task_dir(tmp_path / "busy", {"1": ("python", "running"), "2": ("pt_gloo_runloop", GIL_WAIT)})
    assert ce.settle(0.1, busy, sleep, clock) == pytest.approx(0.1, abs=ce.STEP_S)
    assert set(naps) == {ce.STEP_S}
    assert ce.settle(0, busy, sleep, clock) == 0  # 0 turns it off
    none = fake_task_dir(tmp_path / "none", {"1": ("python", "running")})
    naps.clear()
    assert ce.settle(5, none, sleep, clock) == 0 and naps == []
    unreadable = fake_task_dir(tmp_path / "odd", {"2": ("pt_gloo_runloop", "")})
    assert ce.settle(5, unreadable, sleep, clock) == pytest.approx(ce.UNKNOWN_GRACE_S)
