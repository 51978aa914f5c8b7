"""A private package index for the requirements.txt tests: a PEP 503 `simple/` tree of wheels built
here, served over HTTP on the Docker bridge's gateway (s3_server.bridge_gateway), where the host and
containers reach it, optionally behind HTTP Basic auth (a private index's token). It records what
it was asked for, so a test can tell a download from a cache hit. With `codeartifact` it also plays
the two CodeArtifact calls the entrypoint makes (moto has no CodeArtifact): GetAuthorizationToken
answers the index's password, GetRepositoryEndpoint this server's /pypi/<repository>/, which
serves the same tree (point AWS_ENDPOINT_URL_CODEARTIFACT at `endpoint`).

    index = PackageIndex.start(tmp_path, {"onlyhere": "VALUE = 42\\n"})
    env = {"PIP_INDEX_URL": index.url(), "PIP_TRUSTED_HOST": index.netloc}
    index.stop()
"""

import base64
import functools
import hashlib
import json
import re
import threading
import time
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from smimages.testing.ports import free_port
from smimages.testing.s3_server import bridge_gateway

USER = "aws"  # CodeArtifact's user name; the password is the token


def wheel(folder, name, version="0.1", module="", payload_bytes=0):
    """A pure-Python wheel written by hand (no build tools, no network): `name` with `module` as its
    __init__.py and, for size, `payload_bytes` of incompressible data beside it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": module.encode(),
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    if payload_bytes:
        files[f"{name}/payload.bin"] = _noise(payload_bytes)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        for member, data in files.items():
            whl.writestr(member, data)
        whl.writestr(f"{info}/RECORD", "".join(f"{m},,\n" for m in [*files, f"{info}/RECORD"]))
    return path


def _noise(size):
    """Deterministic bytes that do not compress (a model's weights, a compiled library)."""
    out, block = bytearray(), b"seed"
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


class _Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args, index, **kwargs):
        self.index = index
        super().__init__(*args, directory=str(index.root), **kwargs)

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path.startswith("/v1/"):
            return self._codeartifact()
        self.path = re.sub(r"^/pypi/[^/]+/", "/", self.path)  # CodeArtifact's repository endpoint: the same tree
        expected = self.index.password and "Basic " + base64.b64encode(f"{USER}:{self.index.password}".encode()).decode()
        if expected and self.headers.get("Authorization") != expected:
            self.index.requests.append((self.path, 401))
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="index"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.index.requests.append((self.path, 200))
        super().do_GET()

    do_POST = do_GET  # noqa: N815 - CodeArtifact's GetAuthorizationToken is a POST

    def _codeartifact(self):
        """GetAuthorizationToken and GetRepositoryEndpoint for the one repository this index is."""
        url, domain, owner, repo = urlsplit(self.path), *self.index.codeartifact
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        mine = query.get("domain") == domain and query.get("domain-owner") == owner
        if mine and url.path == "/v1/authorization-token":
            status, body = 200, {"authorizationToken": self.index.password, "expiration": int(time.time()) + 3600}
        elif mine and url.path == "/v1/repository/endpoint" and query.get("repository") == repo:
            status, body = 200, {"repositoryEndpoint": f"{self.index.endpoint}/pypi/{repo}/"}
        else:
            status, body = 404, {"message": f"no such domain or repository: {query}"}
        self.index.requests.append((self.path, status))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status != 200:
            self.send_header("x-amzn-ErrorType", "ResourceNotFoundException")
        self.end_headers()
        self.wfile.write(data)

    def end_headers(self):
        if self.path.startswith("/packages/"):  # as PyPI's file host: a file never changes
            self.send_header("Cache-Control", "max-age=31536000, immutable")
        super().end_headers()

    def log_message(self, *args):
        pass


class PackageIndex:
    def __init__(self, root, password=None, codeartifact=None):
        self.root, self.password = Path(root), password
        self.codeartifact = codeartifact or (None, None, None)  # (domain, owner account, repository)
        self.requests = []  # (path, status) in the order asked
        self.server = self.host = self.port = None

    @classmethod
    def start(cls, root, packages, password=None, host=None, payload_bytes=0, codeartifact=None):
        """An index at `root` holding {name: __init__.py text}, served until stop(); `codeartifact`:
        (domain, owner account, repository) to answer CodeArtifact's calls for."""
        index = cls(root, password, codeartifact)
        for name, module in packages.items():
            index.add(name, module, payload_bytes=payload_bytes)
        index.host = host or bridge_gateway()
        index.port = free_port(index.host)
        index.server = ThreadingHTTPServer((index.host, index.port), functools.partial(_Handler, index=index))
        threading.Thread(target=index.server.serve_forever, daemon=True, name="pip-index").start()
        return index

    def add(self, name, module, version="0.1", payload_bytes=0):
        """The wheel under packages/ and its project page under simple/<name>/ (PEP 503)."""
        path = wheel(self.root / "packages", name, version, module, payload_bytes)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        page = self.root / "simple" / name.lower().replace("_", "-")
        page.mkdir(parents=True, exist_ok=True)
        (page / "index.html").write_text(f'<!DOCTYPE html><html><body><a href="../../packages/{path.name}'
                                         f'#sha256={digest}">{path.name}</a></body></html>\n')

    @property
    def netloc(self):
        return f"{self.host}:{self.port}"

    @property
    def endpoint(self):
        return f"http://{self.netloc}"

    def url(self, password=None):
        """The index's URL, with USER and `password` as its user info when given."""
        auth = f"{USER}:{password}@" if password else ""
        return f"http://{auth}{self.netloc}/simple/"

    def downloads(self, name):
        """How many times a wheel of `name` was sent whole."""
        return sum(1 for path, status in self.requests if path.startswith(f"/packages/{name}-") and status == 200)

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
