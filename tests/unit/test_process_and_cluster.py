"""User processes and host waits, run for real on this machine (no Docker)."""

import signal
import subprocess
import sys
import time

import pytest
from sm_entrypoint import cluster, process
from sm_entrypoint.errors import JobError


def test_exit_code_and_last_stderr_line():
    result = process.run([sys.executable, "-c", "import sys; print('a', file=sys.stderr); sys.exit(5)"])
    assert result.exit_code == 5
    assert result.describe("user script x.py") == "user script x.py exited with code 5: a"


def test_killed_by_signal_maps_to_128_plus_n():
    result = process.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    assert result.exit_code == 137
    assert result.describe("s").startswith("s was killed by signal SIGKILL (exit 137)")


def test_stderr_that_is_not_utf8_is_kept_leniently():
    result = process.run([sys.executable, "-c", "import sys; sys.stderr.buffer.write(b'\\xff\\xfeoops\\n'); sys.exit(1)"])
    assert result.last_error_line().endswith("oops")


CHILD = """
import signal, sys, time
def stop(*_):
    time.sleep(0.5)  # the checkpoint takes a moment: the parent must wait for it
    open(sys.argv[1], "w").write("ok")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
time.sleep(60)
"""
PARENT = """
import sys
from sm_entrypoint import process, signals
with signals.forwarding() as forwarder:
    result = process.run([sys.executable, "-c", sys.argv[1], sys.argv[2]])
print("child exit", result.returncode, "signal", forwarder.received, flush=True)
"""


def test_sigterm_is_forwarded_and_the_child_is_awaited(tmp_path):
    marker = tmp_path / "checkpoint"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, str(marker)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "ready"
    parent.send_signal(signal.SIGTERM)
    out, _ = parent.communicate(timeout=20)
    assert out.strip() == f"child exit 0 signal {int(signal.SIGTERM)}"
    assert marker.read_text() == "ok"


def test_wait_for_hosts_names_the_host_that_never_resolves():
    start = time.monotonic()
    with pytest.raises(JobError, match=r"host\(s\) algo-9.invalid never resolved within 1 s"):
        cluster.wait_for_hosts(["algo-1", "algo-9.invalid"], "algo-1", 7479, timeout_s=1)
    assert time.monotonic() - start < 10


def test_presence_answers_running_then_done():
    presence = cluster.Presence(0)
    port = presence.sock.getsockname()[1]
    assert cluster.ask("127.0.0.1", port) == cluster.RUNNING
    cluster.wait_for_hosts(["me", "127.0.0.1"], "me", port, timeout_s=5)
    presence.done()
    assert cluster.ask("127.0.0.1", port) == cluster.DONE
    cluster.wait_until_others_finish(["me", "127.0.0.1"], "me", port, timeout_s=5)
