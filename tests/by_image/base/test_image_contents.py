"""What every image holds, checked inside it with pytest-testinfra, and what no layer may hold."""

import hashlib
import json
import os
import re
import tarfile
from pathlib import Path

import pytest
import testinfra

from smimages.testing.harness import client
from smimages.testing.images import CATALOG

SECRET_NAMES = re.compile(r"(^|/)(\.aws/credentials|\.netrc|\.pypirc|\.docker/config\.json|id_rsa|id_ed25519|"
                          r"run/secrets/.+)$")
SECRET_ENV = re.compile(r"(SECRET|TOKEN|PASSWORD|ACCESS_KEY|PIP_CERT|CA_BUNDLE)", re.I)


@pytest.fixture(scope="module")
def host(image):
    container = client().containers.run(image, command=["sleep", "600"], entrypoint=[], detach=True)
    try:
        yield testinfra.get_host(f"docker://{container.id}")
    finally:
        container.remove(force=True)


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(name):
    """{package: version} pinned in the image's lock file."""
    text = CATALOG[name].lock.read_text()
    return {norm(m.group(1)): m.group(2) for m in re.finditer(r"^([\w.-]+)==(\S+)", text, re.M)}


def test_python_and_the_tools_sdk3_needs(host):
    assert host.run("python3 --version").stdout.startswith("Python 3.11")
    for tool in ("bash", "python3", "python", "pip", "train", "serve"):
        assert host.exists(tool), tool
    assert host.file("/bin/bash").exists


def test_every_locked_package_is_installed_at_its_version(host, image_name):
    installed = {norm(p["name"]): p["version"]
                 for p in json.loads(host.check_output("pip list --format=json"))}
    wrong = {p: (v, installed.get(p)) for p, v in locked(image_name).items() if installed.get(p) != v}
    assert wrong == {}
    assert "sm-entrypoint" in installed and "sagemaker-training" in installed


def test_pip_check_is_clean(host):
    result = host.run("pip check")
    assert result.rc == 0, result.stdout + result.stderr


def test_default_command_trains_under_tini(image):
    config = client().images.get(image).attrs["Config"]
    assert config["Cmd"] == ["train"]
    assert config["Entrypoint"] == ["/usr/bin/tini", "--"]
    assert not [e for e in config["Env"] if SECRET_ENV.search(e.split("=", 1)[0])]


def host_private_certs():
    """Certificates the host trusts beyond what Debian ships: the ones that must never leak."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt").read_text()
    certs = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", bundle, re.S)
    debian = set(Path("/usr/share/ca-certificates/mozilla").glob("*.crt"))
    known = {re.sub(r"\s", "", p.read_text()) for p in debian}
    return [c for c in certs if re.sub(r"\s", "", c) not in known] or certs


def layers(ref, tmp_path):
    """(layer name, relative path, reader) for every file of every layer. With overlay2 the layers'
    own folders are read in place (a `docker save` of a 6 GB image needs 12 GB of free disk)."""
    driver = client().images.get(ref).attrs["GraphDriver"]
    if driver["Name"] == "overlay2":
        data = driver["Data"]
        for layer in [data.get("UpperDir", ""), *data.get("LowerDir", "").split(":")]:
            for folder, _, files in os.walk(layer) if layer else ():
                for name in files:
                    path = os.path.join(folder, name)
                    if os.path.isfile(path) and not os.path.islink(path):
                        yield layer, os.path.relpath(path, layer), lambda p=path: Path(p).read_bytes()
        return
    archive = tmp_path / "image.tar"
    with archive.open("wb") as f:
        for chunk in client().images.get(ref).save(named=False):
            f.write(chunk)
    with tarfile.open(archive) as outer:
        for layer in (m for m in outer.getmembers() if m.name.endswith("layer.tar")):
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                for m in inner.getmembers():
                    if m.isfile():
                        yield layer.name, m.name, lambda m=m, t=inner: t.extractfile(m).read()


def test_no_ca_bundle_credential_or_token_in_any_layer(image, tmp_path):
    host_bundle = hashlib.sha256(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes()).hexdigest()
    private = [re.sub(r"\s", "", c)[-120:-30].encode() for c in host_private_certs()]
    found, seen = [], 0
    for layer, name, read in layers(image, tmp_path):
        seen += 1
        if SECRET_NAMES.search(name):
            found.append(f"{layer}: {name}")
        if name.endswith((".crt", ".pem")) or "cert" in name:
            data = read()
            if len(data) < 2_000_000 and (hashlib.sha256(data).hexdigest() == host_bundle
                                          or any(p in re.sub(rb"\s", b"", data) for p in private)):
                found.append(f"{layer}: {name} holds the host's CA bundle")
    assert seen > 1000  # the scan saw the image's files
    assert found == []
