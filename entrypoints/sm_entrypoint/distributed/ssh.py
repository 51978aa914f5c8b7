"""SSH between the hosts of one job, for mpirun: nothing secret is baked into the image. Each host
makes its own host key at start; the master makes a fresh key pair and hands its PUBLIC key to
the workers over a small TCP port; each worker starts sshd meanwhile and authorizes the key once
it comes. Every wait here is bounded and says what it waits for."""

import logging
import os
import socket
import subprocess

from .. import cluster, waiting
from ..errors import JobError

log = logging.getLogger("sm_entrypoint")
SSH_DIR = os.path.expanduser("~/.ssh")
KEY = os.path.join(SSH_DIR, "id_ed25519")
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"


def _run(cmd, what):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise JobError(f"{what} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-300:]}")
    return proc.stdout


def start_sshd():
    """A host key made now (none is stored in the image), then sshd in the background. Ed25519
    alone: `ssh-keygen -A` would make RSA 3072 too, a second of CPU on every host at every start,
    and the job's own ssh client takes the Ed25519 key."""
    if not os.path.exists(HOST_KEY):
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", HOST_KEY], "making this host's SSH host key")
    os.makedirs("/run/sshd", exist_ok=True)
    _run(["/usr/sbin/sshd"], "starting sshd")
    log.info("sshd started")


def authorize(public_key):
    os.makedirs(SSH_DIR, mode=0o700, exist_ok=True)
    path = os.path.join(SSH_DIR, "authorized_keys")
    with open(path, "a") as f:
        f.write(public_key.strip() + "\n")
    os.chmod(path, 0o600)


def make_key():
    """A fresh key pair for this job; returns the public key."""
    os.makedirs(SSH_DIR, mode=0o700, exist_ok=True)
    if not os.path.exists(KEY):
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sm-mpi", "-f", KEY], "making an SSH key")
    with open(KEY + ".pub") as f:
        return f.read().strip()


def serve_public_key(public_key, port):
    """Answer every connection on `port` with the public key, for the job's lifetime."""
    return cluster.Answering(port, public_key.encode() + b"\n", "to hand the SSH key to the other hosts")


def fetch_public_key(host, port, timeout_s):
    """The master's public key, asked for until it answers or `timeout_s` passes."""
    last = {"error": ""}

    def attempt():
        try:
            with socket.create_connection((host, port), timeout=5) as conn:
                conn.settimeout(5)
                data = b""
                while chunk := conn.recv(4096):
                    data += chunk
            if data.startswith(b"ssh-"):
                return data.decode().strip()
            last["error"] = f"it answered {data[:40]!r}"
        except OSError as e:
            last["error"] = str(e)
        return None

    def give_up(_):
        raise JobError(f"could not get the MPI master {host}'s SSH key on port {port} within {timeout_s:.0f} s "
                       f"(SM_ENTRYPOINT_HOST_WAIT_SECONDS): {last['error']}")

    return waiting.poll(attempt, timeout_s, give_up,
                        lambda elapsed: f"waiting for the MPI master {host}'s SSH key ({elapsed:.0f} s): {last['error']}")


def wait_reachable(host, timeout_s):
    """Until `ssh host true` works (the worker has our key and sshd runs), bounded."""
    last = {"error": ""}

    def attempt():
        try:  # ConnectTimeout bounds the connection only; a handshake that stalls needs its own limit
            proc = subprocess.run(["ssh", "-o", "ConnectTimeout=5", host, "true"], capture_output=True, text=True,
                                  timeout=30)
        except subprocess.TimeoutExpired:
            last["error"] = "ssh did not finish within 30 s"
            return None
        if proc.returncode == 0:
            return True
        last["error"] = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"ssh exit {proc.returncode}"
        return None

    def give_up(_):
        raise JobError(f"cannot reach host {host} over SSH within {timeout_s:.0f} s "
                       f"(SM_ENTRYPOINT_HOST_WAIT_SECONDS): {last['error']}")

    waiting.poll(attempt, timeout_s, give_up,
                 lambda elapsed: f"waiting for {host} to answer over SSH ({elapsed:.0f} s): {last['error']}")
    log.info("%s answers over SSH", host)
