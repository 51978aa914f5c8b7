"""The one test harness: lays out /opt/ml as SageMaker does and runs real containers with
docker-py, one host or several on a private network, each under a hard timeout.

    job = MLJob(tmp_path, hyperparameters={...}, channels={"train": {"a.csv": "1,2"}})
    [result] = run_job("sm-images/custom-framework:latest", job)
    result.ok()
    assert (result.model / "model.pth").exists()
"""

import io
import json
import os
import re
import shutil
import tarfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import docker

from smimages.testing import streaming

DEFAULT_TIMEOUT_S = 180
CONFIG_FILES = ("hyperparameters.json", "inputdataconfig.json", "resourceconfig.json")


def client():
    return docker.from_env(timeout=120)


@dataclass
class MLJob:
    """A training job's /opt/ml trees (one per host) as SageMaker lays them out."""

    root: Path
    hyperparameters: dict = field(default_factory=dict)
    channels: dict = field(default_factory=dict)  # name -> {relative path: str | bytes | Path}
    hosts: tuple = ("algo-1",)
    env: dict = field(default_factory=dict)
    shared_model_dir: bool = False  # local mode shares one /opt/ml/model between hosts
    config_override: dict = field(default_factory=dict)  # file name -> raw text, or None to omit
    checkpoint_dir: Path = None  # a host folder mounted at /opt/ml/checkpoints (kept across runs)
    # channel -> "File" (the default), "FastFile" (its folder mounted read-only) or "Pipe" (no folder:
    # the test makes the FIFOs <channel>_<epoch> with pipe() and writes into them as the platform does)
    input_modes: dict = field(default_factory=dict)
    instance_groups: dict = field(default_factory=dict)  # group name -> its hosts: a heterogeneous cluster

    def __post_init__(self):
        self.root = Path(self.root)
        for host in self.hosts:
            self._lay_out(host)

    def tree(self, host):
        return self.root / host

    def model_dir(self, host):
        return self.root / "shared-model" if self.shared_model_dir else self.tree(host) / "model"

    def _lay_out(self, host):
        ml = self.tree(host)
        config = ml / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (ml / "output").mkdir(exist_ok=True)
        self.model_dir(host).mkdir(parents=True, exist_ok=True)
        files = {
            "hyperparameters.json": json.dumps({k: str(v) for k, v in self.hyperparameters.items()}),
            "inputdataconfig.json": json.dumps({c: {"TrainingInputMode": self.input_modes.get(c, "File")}
                                                for c in {**self.channels, **self.input_modes}}),
            "resourceconfig.json": json.dumps(self.resource_config(host)),
        }
        files.update(self.config_override)
        for name, text in files.items():
            if text is not None:
                (config / name).write_text(text)
        for channel, content in self.channels.items():
            if self.input_modes.get(channel) != "Pipe":
                write_tree(ml / "input" / "data" / channel, content)
        if "Pipe" in self.input_modes.values():
            (ml / "input" / "data").mkdir(exist_ok=True)

    def resource_config(self, host):
        """resourceconfig.json as SageMaker writes it for `host`; with instance_groups, a
        heterogeneous cluster's (current_group_name, current_instance_type, instance_groups)."""
        config = {"current_host": host, "hosts": list(self.hosts), "network_interface_name": "eth0"}
        if self.instance_groups:
            group = next(g for g, hosts in self.instance_groups.items() if host in hosts)
            config.update(current_group_name=group, current_instance_type=f"ml.{group}.xlarge", instance_groups=[
                {"instance_group_name": g, "instance_type": f"ml.{g}.xlarge", "hosts": list(hosts)}
                for g, hosts in self.instance_groups.items()])
        return config

    def pipe(self, host, channel, epoch):
        """Make the FIFO /opt/ml/input/data/<channel>_<epoch> of a Pipe channel; returns its host path."""
        path = self.tree(host) / "input" / "data" / f"{channel}_{epoch}"
        os.mkfifo(path, 0o666)
        return path

    def volumes(self, host):
        vols = {str(self.tree(host)): {"bind": "/opt/ml", "mode": "rw"}}
        if self.shared_model_dir:
            vols[str(self.model_dir(host))] = {"bind": "/opt/ml/model", "mode": "rw"}
        if self.checkpoint_dir:
            Path(self.checkpoint_dir).mkdir(parents=True, exist_ok=True)
            vols[str(self.checkpoint_dir)] = {"bind": "/opt/ml/checkpoints", "mode": "rw"}
        for channel, mode in self.input_modes.items():
            if mode == "FastFile":  # a read-only mount, as SageMaker's lazy S3 mount is
                folder = self.tree(host) / "input" / "data" / channel
                folder.mkdir(parents=True, exist_ok=True)
                vols[str(folder)] = {"bind": f"/opt/ml/input/data/{channel}", "mode": "ro"}
        return vols


def write_tree(folder, content):
    """Write {relative path: text, bytes or a Path to copy} under `folder`; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for rel, data in content.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, Path):
            shutil.copy(data, path)
        elif isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
    return folder


def program_job(tmp_path, script, **kwargs):
    """A one-host job under tmp_path/ml that runs `script` as train.py from /opt/ml/code
    (sagemaker_program + sagemaker_submit_directory): what every image runs, framework module or
    not. kwargs go to MLJob (channels, config_override, env)."""
    job = MLJob(tmp_path / "ml", hyperparameters={"sagemaker_program": "train.py",
                                                  "sagemaker_submit_directory": "/opt/ml/code"}, **kwargs)
    write_tree(job.tree("algo-1") / "code", {"train.py": script})
    return job


def tarball_bytes(files):
    """A .tar.gz's bytes holding {name: text} (names taken as they are, escaping ones included)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_tarball(path, files):
    """A sourcedir.tar.gz holding {name: text}."""
    Path(path).write_bytes(tarball_bytes(files))
    return path


@dataclass
class HostResult:
    host: str
    exit_code: int
    logs: str
    tree: Path
    model: Path
    timed_out: bool = False
    changes: list = field(default_factory=list)  # paths the container added, changed or deleted

    def touched_outside(self, allowed=("/opt/ml", "/tmp")):
        """Changed paths outside `allowed` (and outside bind mounts, which docker diff omits)."""
        return [p for p in self.changes
                if not any(p == a or p.startswith(a + "/") for a in allowed) and p not in allowed_parents(allowed)]

    @property
    def failure(self):
        path = self.tree / "output" / "failure"
        return path.read_text() if path.exists() else None

    @property
    def success(self):
        """The empty marker sagemaker-training writes when a job succeeds."""
        return (self.tree / "output" / "success").exists()

    def ok(self):
        """What every good job must show: exit 0 before the hard timeout, `success` in its output
        (what tools written for AWS's images look for in output.tar.gz) and no failure file."""
        assert self.exit_code == 0 and not self.timed_out, self.logs[-6000:]
        assert self.failure is None, self.failure
        assert self.success, f"no /opt/ml/output/success; logs:\n{self.logs[-6000:]}"

    @property
    def failure_first_line(self):
        text = self.failure
        return text.splitlines()[0] if text else None

    def cause(self, code=None):
        """The first line of the failure file, once what every failed job must show holds: a
        non-zero exit (`code` if given) before the hard timeout, a failure file whose first line
        fits SageMaker's 1024 characters, and nothing changed outside the job's own folders."""
        WATCH.expect()  # a failed job logs its error
        assert self.exit_code != 0 and not self.timed_out, self.logs[-6000:]
        if code is not None:
            assert self.exit_code == code, self.logs[-6000:]
        assert self.failure is not None, f"no failure file; logs:\n{self.logs[-6000:]}"
        assert not self.success, "a failed job left a success file"
        assert len(self.failure_first_line) <= 1024
        assert self.touched_outside() == [], "the job changed files outside its own folders"
        return self.failure_first_line


class LogWatch:
    """The logs of every container a test runs, kept when the container is removed, so that the
    test fails on an error line it did not expect (smimages.testing.plugin checks after each test).
    A test expects them by calling HostResult.cause() or with @pytest.mark.expect_log_errors."""

    UNEXPECTED = re.compile(r"^.*(Traceback \(most recent call last\)|\bERROR\b).*$", re.M)

    def __init__(self):
        self.start()

    def start(self):
        self.logs, self.expected = [], False

    def expect(self):
        self.expected = True

    def keep(self, name, logs):
        self.logs.append((name, logs))

    def unexpected(self):
        """[(container, first error line)] unless errors were expected."""
        if self.expected:
            return []
        return [(name, m.group(0).strip()) for name, logs in self.logs if (m := self.UNEXPECTED.search(logs))]


WATCH = LogWatch()


class TrackedContainer:
    """A container that is always removed (its logs kept in WATCH), and killed when it outlives
    its hard timeout."""

    def __init__(self, image, start=True, **kwargs):
        """`start=False`: created only; `.container.start()` when the caller is ready."""
        self.container = client().containers.create(image, **kwargs)
        if start:
            self.container.start()

    def wait(self, timeout_s):
        """(exit code, timed out). Past `timeout_s` it is killed; what still ran in it is kept in
        `running_at_timeout`."""
        try:
            return self.container.wait(timeout=timeout_s)["StatusCode"], False
        except Exception:  # noqa: BLE001 - docker-py raises a requests timeout here
            self.running_at_timeout = self._processes()
            self.container.kill()
            return self.container.wait(timeout=30)["StatusCode"], True

    def _processes(self):
        try:
            return "\n".join(" ".join(p) for p in self.container.top(ps_args="-eo pid,ppid,stat,args")["Processes"])
        except docker.errors.APIError as e:  # it ended just now
            return f"(no process list: {e.explanation})"

    def exit_code(self, timeout_s):
        """The exit code of a container expected to end by itself; past `timeout_s` the test fails
        with the processes still running in it and its logs."""
        code, timed_out = self.wait(timeout_s)
        assert not timed_out, f"still running after {timeout_s} s:\n{self.running_at_timeout}\n{self.logs()}"
        return code

    def changes(self):
        return [c["Path"] for c in self.container.diff() or []]

    def logs(self):
        return self.container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")

    def logs_once(self, text, count=1, timeout_s=30):
        """The logs once `text` appears `count` times in them, or as they stand when time runs out:
        docker copies a container's output to its log asynchronously, so what was printed
        before an HTTP answer can reach the log after it."""
        deadline = time.monotonic() + timeout_s
        logs = self.logs()
        while logs.count(text) < count and time.monotonic() < deadline:
            time.sleep(0.1)
            logs = self.logs()
        return logs

    def remove(self):
        try:
            WATCH.keep(self.container.name, self.logs())
            self.container.remove(force=True)
        except docker.errors.NotFound:
            pass


def run_command(image, command, volumes=None, timeout_s=120, env=None):
    """One command in a fresh container of `image` -> (exit code, logs); killed at the timeout."""
    tracked = TrackedContainer(image, command=list(command), volumes=volumes or {}, environment=env or {},
                               name=f"cmd-{uuid.uuid4().hex[:6]}")
    try:
        code, _ = tracked.wait(timeout_s)
        return code, tracked.logs()
    finally:
        tracked.remove()


def run_job(image, job, timeout_s=DEFAULT_TIMEOUT_S, command=("train",), start_hosts=None,
            stop_all_when_one_exits=False, mem_limit=None, on_start=None):
    """Run every host of `job` (or only `start_hosts`) and return one HostResult per started host.

    stop_all_when_one_exits mimics SDK 2.x local mode (docker-compose --abort-on-container-exit):
    the first host to exit gets the others stopped.
    """
    hosts = list(start_hosts or job.hosts)
    net = client().networks.create(f"smtest-{uuid.uuid4().hex[:8]}", driver="bridge") if len(job.hosts) > 1 else None
    tracked = {}
    try:
        for host in hosts:
            kwargs = dict(command=list(command) if command else None, volumes=job.volumes(host),
                          environment=job.env, mem_limit=mem_limit, memswap_limit=mem_limit,
                          name=f"{host}-{uuid.uuid4().hex[:6]}")
            if net:
                kwargs["network"] = net.name
                kwargs["networking_config"] = {net.name: client().api.create_endpoint_config(aliases=[host])}
            tracked[host] = TrackedContainer(image, start=False, **kwargs)
        _start_together(tracked.values())
        if on_start:
            on_start(tracked)
        codes = {}
        if stop_all_when_one_exits:
            _first_exit_stops_all(tracked, timeout_s)
        threads = [threading.Thread(target=lambda h=h: codes.__setitem__(h, tracked[h].wait(timeout_s)))
                   for h in hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [HostResult(h, codes[h][0], tracked[h].logs(), job.tree(h), job.model_dir(h), codes[h][1],
                           tracked[h].changes()) for h in hosts]
    finally:
        for t in tracked.values():
            t.remove()
        if net:
            net.remove()


def _start_together(tracked):
    """Start every host at once, as SageMaker and local mode's docker compose do: started one by
    one, the first host would wait for the last one's start (seconds at 8 hosts here)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        for done in [pool.submit(t.container.start) for t in tracked]:
            done.result()


def allowed_parents(allowed):
    """/opt for /opt/ml: docker diff lists a changed folder's parents too."""
    parents = set()
    for a in allowed:
        parts = a.strip("/").split("/")
        parents.update("/" + "/".join(parts[:i]) for i in range(1, len(parts)))
    return parents


def _first_exit_stops_all(tracked, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for t in tracked.values():
            t.container.reload()
            if t.container.status == "exited":
                for other in tracked.values():
                    if other is not t:
                        other.container.stop(timeout=10)
                return
        time.sleep(0.2)


# --- serving: a `serve` container on a loopback port ---------------------------------------------

# A serverless endpoint's container: CPU only, its memory 1 to 6 GB (here 2 GB), no swap.
SERVERLESS = {"mem_limit": "2g", "memswap_limit": "2g"}

class ServingContainer:
    """`<image> serve` with a model folder at /opt/ml/model, its port (8080) published on 127.0.0.1.

        with ServingContainer(image, model_dir, env={...}) as server:
            server.wait_ready()
            status, body, headers = server.request("POST", "/invocations", b"1,2", {"Content-Type": "text/csv"})
    """

    def __init__(self, image, model_dir, env=None, volumes=None, command=("serve",), container_port=8080,
                 more_ports=(), **run_args):
        """`run_args`: more of docker's run options (mem_limit, nano_cpus, network_mode, ...);
        `more_ports`: container ports to publish too (those of containers sharing this one's network)."""
        vols = {str(model_dir): {"bind": "/opt/ml/model", "mode": "ro"}} if model_dir else {}
        vols.update(volumes or {})
        self.published = f"{container_port}/tcp"
        ports = {} if "network_mode" in run_args else {f"{p}/tcp": ("127.0.0.1", None)
                                                        for p in (container_port, *more_ports)}
        self.tracked = TrackedContainer(image, command=list(command), volumes=vols, environment=env or {},
                                        ports=ports, name=f"serve-{uuid.uuid4().hex[:6]}", **run_args)
        self.container = self.tracked.container
        self._port = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.tracked.remove()

    @property
    def port(self):
        """The host port; docker assigns it when the container starts."""
        if self._port is None:
            self._port = self.port_of(self.published)
        return self._port

    def port_of(self, container_port):
        """The host port published for `container_port` (8081 or "8081/tcp")."""
        key = container_port if str(container_port).endswith("/tcp") else f"{container_port}/tcp"
        deadline = time.monotonic() + 30
        while True:
            self.container.reload()
            bound = (self.container.attrs["NetworkSettings"]["Ports"] or {}).get(key)
            if bound:
                return int(bound[0]["HostPort"])
            if self.container.status == "exited" or time.monotonic() > deadline:
                raise RuntimeError(f"the server never published its port {key}:\n{self.tracked.logs()}")
            time.sleep(0.05)

    def request(self, method, path, body=None, headers=None, timeout_s=60, port=None):
        """-> (status, body bytes, headers dict with lower-case names). `port`: another host port
        than this server's (a container sharing its network)."""
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout_s)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()

    def half_sent_post(self, declared_bytes, sent_bytes):
        """An open connection holding a POST /invocations whose headers announce `declared_bytes`,
        of which `sent_bytes` are sent: a client that stalls, or one whose body is too big."""
        import socket

        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.sendall(f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                     f"Content-Length: {declared_bytes}\r\n\r\n".encode() + b"1," * (sent_bytes // 2))
        return sock

    def post_head_of_a_huge_body(self, declared_bytes):
        """Headers of a POST /invocations that announce `declared_bytes`, then 64 KiB of it: the
        answer (status line, headers, body as text) must come anyway."""
        with self.half_sent_post(declared_bytes, 65536) as sock:
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"\n"):
                part = sock.recv(65536)
                if not part:
                    break
                answer += part
        return answer.decode(errors="replace")

    def ping(self, port=None):
        """The /ping status, or None while nothing answers."""
        try:
            return self.request("GET", "/ping", timeout_s=5, port=port)[0]
        except OSError:
            return None

    def stream(self, path, body, headers, keep=None, timeout_s=60):
        """POST and read a streamed answer chunk by chunk (smimages.testing.streaming)."""
        return streaming.stream(self.port, path, body, headers, keep, timeout_s)

    def stop(self, grace_s=10):
        """`docker stop` (SIGTERM, SIGKILL after `grace_s`, docker's default) -> the exit code: 137
        when it had to be killed. How long a stop takes is `make bench-serving`'s `docker stop` row;
        a worker gunicorn had to kill logs an ERROR line, which fails the test."""
        self.container.stop(timeout=grace_s)
        self.container.reload()
        return self.container.attrs["State"]["ExitCode"]

    def wait_ready(self, timeout_s=60, port=None):
        """Until /ping answers 200; fails with the logs if the container exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ping(port) == 200:
                return
            self.container.reload()
            if self.container.status == "exited":
                raise RuntimeError(f"the server exited before answering /ping:\n{self.tracked.logs()}")
            time.sleep(0.05)
        raise RuntimeError(f"/ping did not answer 200 within {timeout_s} s:\n{self.tracked.logs()}")

    def logs(self):
        return self.tracked.logs()

    def logs_once(self, text, count=1, timeout_s=30):
        return self.tracked.logs_once(text, count, timeout_s)
