"""Pushing to a registry with docker-py: log in, tag, push with progress, return the digest."""

import docker
import docker.errors
import requests.exceptions

from . import PublishError


def client():
    try:
        c = docker.from_env(timeout=600)
        c.ping()
        return c
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise PublishError(f"the Docker engine does not answer ({e}): run `make engine`") from None


def login(c, user, password, host):
    try:
        c.login(username=user, password=password, registry=host, reauth=True)
    except (docker.errors.APIError, requests.exceptions.RequestException) as e:
        raise PublishError(f"cannot log in to registry {host}: {_reason(e)}") from None


def push(c, local_ref, repository, tag, auth):
    """Tag `local_ref` as repository:tag and push it; returns the pushed digest (sha256:...)."""
    try:
        c.images.get(local_ref).tag(repository, tag)
    except docker.errors.ImageNotFound:
        raise PublishError(f"{local_ref} is not built: run `make build`") from None
    digest, shown = None, set()
    try:
        for event in c.api.push(repository, tag=tag, auth_config=auth, stream=True, decode=True):
            if "error" in event:
                raise PublishError(f"push of {repository}:{tag} failed: {_reason(event['error'])}")
            status = event.get("status", "")
            if status in ("Pushed", "Layer already exists", "Mounted from") and event.get("id") not in shown:
                shown.add(event.get("id"))
                print(f"    {event.get('id')}: {status}", flush=True)
            digest = event.get("aux", {}).get("Digest", digest)
    except (docker.errors.APIError, requests.exceptions.RequestException) as e:
        raise PublishError(f"push of {repository}:{tag} failed: {_reason(e)}") from None
    if not digest:
        raise PublishError(f"push of {repository}:{tag} reported no digest")
    return digest


def _reason(e):
    text = str(getattr(e, "explanation", None) or e)
    return " ".join(text.split())[:400]
