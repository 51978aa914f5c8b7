"""Real servers on loopback for publishing tests: moto's AWS server (STS, ECR) and a Docker
registry (Debian's docker-registry package), each started per module and stopped after it."""

import subprocess
import time
import urllib.request

import pytest

from smimages.testing.harness import client
from smimages.testing.ports import free_port
from smimages.testing.s3_server import S3Server

START_TIMEOUT_S = 30


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
    server = S3Server.start("127.0.0.1")
    yield server.url
    server.stop()


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
