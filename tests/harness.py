"""The one test harness: lays out /opt/ml as SageMaker does and runs real containers with
docker-py, one host or several on a private network, each under a hard timeout.

    job = MLJob(tmp_path, hyperparameters={...}, channels={"train": {"a.csv": "1,2"}})
    [result] = run_job("sm-images/custom-framework:latest", job)
    assert result.exit_code == 0 and (result.model / "model.pth").exists()
"""

import io
import json
import shutil
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker

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
            "inputdataconfig.json": json.dumps({c: {"TrainingInputMode": "File"} for c in self.channels}),
            "resourceconfig.json": json.dumps({"current_host": host, "hosts": list(self.hosts),
                                               "network_interface_name": "eth0"}),
        }
        files.update(self.config_override)
        for name, text in files.items():
            if text is not None:
                (config / name).write_text(text)
        for channel, content in self.channels.items():
            write_tree(ml / "input" / "data" / channel, content)

    def volumes(self, host):
        vols = {str(self.tree(host)): {"bind": "/opt/ml", "mode": "rw"}}
        if self.shared_model_dir:
            vols[str(self.model_dir(host))] = {"bind": "/opt/ml/model", "mode": "rw"}
        return vols


def write_tree(folder, content):
    """Write {relative path: text, bytes or a Path to copy} under `folder`."""
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


def make_tarball(path, files):
    """A sourcedir.tar.gz holding {name: text}."""
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
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
    def failure_first_line(self):
        text = self.failure
        return text.splitlines()[0] if text else None


class TrackedContainer:
    """A container that is always removed, and killed when it outlives its hard timeout."""

    def __init__(self, image, **kwargs):
        self.container = client().containers.run(image, detach=True, **kwargs)

    def wait(self, timeout_s):
        try:
            return self.container.wait(timeout=timeout_s)["StatusCode"], False
        except Exception:  # noqa: BLE001 - docker-py raises a requests timeout here
            self.container.kill()
            return self.container.wait(timeout=30)["StatusCode"], True

    def changes(self):
        return [c["Path"] for c in self.container.diff() or []]

    def logs(self):
        return self.container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")

    def remove(self):
        try:
            self.container.remove(force=True)
        except docker.errors.NotFound:
            pass


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
            tracked[host] = TrackedContainer(image, **kwargs)
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
