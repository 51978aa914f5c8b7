"""Nothing a build used is left in an image: no empty folders where BuildKit bind-mounted build
files or caches (a mount target that does not exist is created in the layer and stays), no lock
parts, wheels, sources or pip cache."""

import json

import pytest

from smimages.testing.harness import client

# What the root image (debootstrap's bookworm) has at the top, plus /opt (the venv).
TOP_LEVEL = {"bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "media", "mnt", "opt",
             "proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var", ".dockerenv"}
ROOT_HOME = {".bashrc", ".profile", ".ssh"}  # .ssh: made (empty, 0700) for MPI in pytorch-horovod
EMPTY = ("/tmp", "/var/tmp", "/mnt", "/media", "/srv", "/run/secrets")

LOOK = f"EMPTY = {EMPTY!r}\n" + r"""
import json, os, stat, subprocess
def ls(p):
    return sorted(os.listdir(p)) if os.path.isdir(p) else None
cache = subprocess.run(["pip", "cache", "dir"], capture_output=True, text=True).stdout.strip()
print(json.dumps({
    "top": ls("/"),
    "root": ls("/root"),
    "empty": {p: ls(p) for p in EMPTY},
    "tmp_mode": oct(stat.S_IMODE(os.stat("/tmp").st_mode)),
    "pip_cache": cache,
    "pip_cache_exists": bool(cache) and os.path.exists(cache),
}))
"""


@pytest.fixture(scope="module")
def seen(image):
    out = client().containers.run(image, command=["python3", "-c", LOOK], entrypoint=[], remove=True)
    return json.loads(out.decode().strip().splitlines()[-1])


def test_tmp_is_empty_and_still_tmp(seen):
    assert seen["empty"]["/tmp"] == []
    assert seen["tmp_mode"] == "0o1777"


def test_no_mount_target_or_scratch_folder_stays(seen):
    assert {p: v for p, v in seen["empty"].items() if v} == {}
    assert sorted(set(seen["top"]) - TOP_LEVEL) == []  # /wheels, /locks, /sdist ...


def test_no_pip_cache(seen):
    assert not seen["pip_cache_exists"], seen["pip_cache"]
    assert sorted(set(seen["root"]) - ROOT_HOME) == []  # /root/.cache (a cache mount's target)
