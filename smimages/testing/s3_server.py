"""A real S3 API on this machine for the seed replays and the tests: moto's server (pinned in the
test lock), listening on the Docker bridge's gateway address, so the host and containers reach it
at one URL (127.0.0.1 inside a container is the container itself). Never an outside address.

    server = S3Server.start()      # server.url, e.g. http://172.17.0.1:41234
    server.bucket("sagemaker-local")
    server.stop()
"""

import ipaddress
import json
import subprocess
import time
import urllib.request

from smimages.catalog import DOCKER, ROOT
from smimages.testing.ports import free_port

MOTO = ROOT / ".venv" / "bin" / "moto_server"
START_TIMEOUT_S = 30
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def bridge_gateway():
    """This machine's own address on Docker's default bridge (dockerd gives it the subnet's first)."""
    config = json.loads(subprocess.run([DOCKER, "network", "inspect", "bridge", "-f", "{{json .IPAM.Config}}"],
                                       capture_output=True, text=True, check=True).stdout)[0]
    return config.get("Gateway") or str(next(ipaddress.ip_network(config["Subnet"]).hosts()))


class S3Server:
    def __init__(self, host, port, proc):
        self.host, self.port, self.proc = host, port, proc
        self.url = f"http://{host}:{port}"

    @classmethod
    def start(cls, host=None):
        host = host or bridge_gateway()
        port = free_port(host)
        proc = subprocess.Popen([str(MOTO), "-H", host, "-p", str(port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        server = cls(host, port, proc)
        server._wait()
        return server

    def _wait(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited at start (exit {self.proc.returncode})")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"moto_server did not answer {self.url} within {START_TIMEOUT_S} s")

    def client(self, service="s3"):
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name="us-west-2",
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def bucket(self, name):
        """An empty bucket (created if missing); returns its name."""
        s3 = self.client()
        if name not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        return name

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
