"""custom-framework: the failures only a container shows (a memory limit, `docker stop` through
tini). Every other way a job goes wrong (a non-zero exit, within a bounded time, and a failure file
whose first line is the cause) is plain Python, tested without Docker in tests/unit (test_train.py,
test_config.py, test_program_resolve.py, test_source.py); every image's own failures run in
tests/by_image/base/test_failure_modes_in_every_image.py."""

import time

from smimages.testing.harness import program_job, run_job


def test_out_of_memory_under_a_container_limit_is_named(image, tmp_path):
    script = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))\n"
    [r] = run_job(image, program_job(tmp_path, script), mem_limit="160m")
    line = r.cause(137)
    assert "SIGKILL" in line and "ran out of memory" in line


def test_sigterm_reaches_the_user_script_which_can_checkpoint(image, tmp_path):
    script = """
import os, signal, sys, time
def stop(signum, frame):
    open("/opt/ml/model/checkpoint", "w").write("saved on SIGTERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("handler installed", flush=True)
time.sleep(120)
"""
    job = program_job(tmp_path, script)

    def stop_once_running(tracked):
        # a stop before the script's handler exists would test nothing
        assert "handler installed" in tracked["algo-1"].logs_once("handler installed", timeout_s=45)
        container = tracked["algo-1"].container
        start = time.monotonic()
        container.stop(timeout=20)
        stop_once_running.took = time.monotonic() - start

    [r] = run_job(image, job, on_start=stop_once_running, timeout_s=60)
    assert (r.model / "checkpoint").read_text() == "saved on SIGTERM"
    assert stop_once_running.took < 10  # well inside the grace period: no kill was needed
    assert "received SIGTERM: forwarding it" in r.logs
