"""The SageMaker SDKs and testinfra call `docker` by name: a folder to put first on PATH whose
`docker` is Debian's client, which speaks to dockerd 20.10 (the newer CLI first on PATH here
refuses classic builds and has no compose plugin)."""

from smimages.catalog import DOCKER, ROOT

SHIM = ROOT / "build" / "docker-shim"


def folder():
    SHIM.mkdir(parents=True, exist_ok=True)
    if not (SHIM / "docker").exists():
        (SHIM / "docker").symlink_to(DOCKER)
    return SHIM
