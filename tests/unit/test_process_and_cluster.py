"""User processes and host waits, run for real on this machine (no Docker); the waits for several
hosts (the barrier, the end of the job, the MPI master's SSH checks) wait for all of them at once."""

import signal
import socket
import subprocess
import sys
import time

import pytest
from sm_entrypoint import cluster, process
from sm_entrypoint.distributed import mpi, ssh
from sm_entrypoint.errors import JobError
from sm_entrypoint.script import Script
from sm_entrypoint.settings import Settings


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


def test_a_host_that_does_not_take_the_connection_is_given_up_on_within_the_connect_bound():
    with socket.socket() as server:  # a full accept queue: its kernel drops every further SYN, as a dead address does
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        held = []
        while True:
            client = socket.socket()
            client.settimeout(0.3)
            try:
                client.connect(server.getsockname())
                held.append(client)
            except OSError:
                client.close()
                break
        start = time.monotonic()
        assert cluster.ask("127.0.0.1", server.getsockname()[1]) == b""
        assert time.monotonic() - start < cluster.CONNECT_S + 0.5  # not the 2 s an answer may take
        for client in held:
            client.close()


def test_a_failed_host_says_why_and_a_host_that_succeeded_then_fails_with_that_cause():
    presence = cluster.Presence(0)
    port = presence.sock.getsockname()[1]
    presence.failed("user script fail.py failed on rank 1 (host algo-2): ValueError: bad")
    assert cluster.ask("127.0.0.1", port) == b"Fuser script fail.py failed on rank 1 (host algo-2): ValueError: bad"
    with pytest.raises(JobError) as e:
        cluster.wait_until_others_finish(["me", "127.0.0.1"], "me", port, timeout_s=5)
    assert e.value.cause == ("user script fail.py failed on rank 1 (host algo-2): ValueError: bad "
                             "(host 127.0.0.1 failed; the work on me succeeded)")
    cluster.wait_until_others_finish(["me", "127.0.0.1"], "me", port, timeout_s=5, own_failure=True)  # ours first
    presence.close()


def slow_ask(answers):
    """A stand-in for cluster.ask that takes 0.3 s and answers from `answers` (host -> list, first used first)."""
    def ask(host, port):
        time.sleep(0.3)
        return answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
    return ask


HOSTS = [f"algo-{i}" for i in range(1, 9)]


def test_wait_for_hosts_asks_every_other_host_at_once(monkeypatch):
    monkeypatch.setattr(cluster, "ask", slow_ask({h: [b"", cluster.RUNNING] for h in HOSTS}))
    start = time.monotonic()
    cluster.wait_for_hosts(HOSTS, "algo-1", 7479, timeout_s=30)
    assert time.monotonic() - start < 1.5  # two rounds of 0.3 s; one host after another: 4.2 s


def test_a_finished_host_waits_for_the_others_all_at_once(monkeypatch):
    answers = {h: [cluster.RUNNING, cluster.DONE] for h in HOSTS}
    answers["algo-8"] = [b""]  # gone already: not waited for
    monkeypatch.setattr(cluster, "ask", slow_ask(answers))
    start = time.monotonic()
    cluster.wait_until_others_finish(HOSTS, "algo-1", 7479, timeout_s=30)
    assert time.monotonic() - start < 1.5


def mpi_settings(host_wait_s=300.0):
    return Settings("/opt/ml", host_wait_s, 3600.0, 7479, 16384)


def test_the_mpi_master_waits_for_every_workers_ssh_at_once_and_names_one_that_never_answers(monkeypatch, caplog):
    for name in ("authorize", "start_sshd", "serve_public_key"):
        monkeypatch.setattr(ssh, name, lambda *a: None)
    monkeypatch.setattr(ssh, "make_key", lambda: "ssh-ed25519 AAAA sm-mpi")
    ran, unreachable = [], set()
    monkeypatch.setattr(Script, "run", lambda self: ran.append(self))

    def wait_reachable(host, timeout_s):
        time.sleep(0.3)
        if host in unreachable:
            raise JobError(f"cannot reach host {host} over SSH within {timeout_s:.0f} s")

    monkeypatch.setattr(ssh, "wait_reachable", wait_reachable)
    master = mpi.Master.from_script(Script("/opt/ml/code/train.py", [], "/opt/ml/code", {}), HOSTS, 2, "",
                                    "eth0", mpi_settings())
    start = time.monotonic()
    master.run()
    assert time.monotonic() - start < 1.2 and ran == [master]  # seven workers one after another: 2.1 s
    unreachable.update({"algo-7", "algo-5"})
    with pytest.raises(JobError, match="cannot reach host algo-5 over SSH within 300 s"):
        master.run()
    assert ran == [master] and "also: cannot reach host algo-7" in caplog.text


def test_an_mpi_worker_starts_sshd_before_the_masters_key_comes(monkeypatch):
    calls = []
    monkeypatch.setattr(ssh, "start_sshd", lambda: calls.append("sshd"))
    monkeypatch.setattr(ssh, "fetch_public_key", lambda *a: calls.append("fetch") or "ssh-ed25519 AAAA sm-mpi")
    monkeypatch.setattr(ssh, "authorize", lambda key: calls.append(f"authorize {key}"))
    monkeypatch.setattr(mpi.Worker, "wait_for_master", lambda self: calls.append("wait"))
    mpi.Worker("algo-1", "user script train.py", mpi_settings()).run()
    assert calls == ["sshd", "fetch", "authorize ssh-ed25519 AAAA sm-mpi", "wait"]
