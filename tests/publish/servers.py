"""Real servers on loopback for publishing tests: moto's AWS server (STS, ECR) and a Docker
registry (Debian's docker-registry package), each started per module and stopped after it."""

import socket
import subprocess
import time
import urllib.request

import pytest
from conftest import REPO
from harness import client

START_TIMEOUT_S = 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, proc, what):
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited at start (exit {proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail(f"{what} did not answer {url} within {START_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def moto_url():
    port = free_port()
    proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/moto-api/", proc, "moto_server")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """host:port of an empty registry (plain http on loopback, which dockerd allows by default)."""
    port = free_port()
    folder = tmp_path_factory.mktemp("registry")
    config = folder / "config.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {folder}/data\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    log = (folder / "registry.log").open("w")  # a file, not a pipe: a full pipe would stall the registry
    proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}/v2/", proc, "docker-registry")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)
    log.close()
    untag(f"127.0.0.1:{port}/")


def untag(prefix):
    """Remove the local tags a push to a test registry left behind (the images themselves stay)."""
    engine = client()
    for image in engine.images.list():
        for tag in image.tags:
            if tag.startswith(prefix):
                engine.images.remove(tag, force=True, noprune=True)  # the tag only; the image stays


@pytest.fixture
def aws_env(moto_url, monkeypatch):
    """The environment of a user whose AWS calls go to the moto server."""
    env = {"AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-west-2", "AWS_EC2_METADATA_DISABLED": "true"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def bridge_gateway():
    """The Docker bridge's gateway address: this machine's own address on the bridge, so a server
    listening there is reached by the host and by containers alike (127.0.0.1 in a container is
    the container itself)."""
    import ipaddress

    network = client().networks.get("bridge")
    for config in network.attrs.get("IPAM", {}).get("Config") or []:
        if config.get("Gateway"):
            return config["Gateway"]
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True, text=True).stdout
    for word in out.split():
        if "/" in word and word[0].isdigit():
            return word.split("/")[0]
    subnet = network.attrs["IPAM"]["Config"][0]["Subnet"]
    return str(next(ipaddress.ip_network(subnet).hosts()))  # dockerd's default: the first address


def start_moto(host):
    """moto's server on `host` (an address of this machine) -> (url, process); stop with stop_moto."""
    port = free_port()
    proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "moto_server"), "-H", host, "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://{host}:{port}"
    wait_http(f"{url}/moto-api/", proc, "moto_server")
    return url, proc


def stop_moto(proc):
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def moto_bridge_url():
    """moto's server (S3 and the rest) on the Docker bridge's gateway: containers reach it there."""
    url, proc = start_moto(bridge_gateway())
    yield url
    stop_moto(proc)


def s3_bucket(url, name):
    """An empty bucket on the moto server at `url` -> a boto3 S3 client for it."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    return s3
