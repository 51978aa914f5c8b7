"""make push, make sbom and the buildspec, against real servers on loopback: moto's ECR and STS, and
a Docker registry. Pushed images are pulled back by digest and compared by image ID. They publish
the first image under test (the tag scheme and labels are the same for all)."""

import json
import os
import subprocess

import boto3
import pytest
import yaml

from smimages.catalog import DOCKER, PREFIX, PYTHON_VERSION
from smimages.catalog import ROOT as REPO
from smimages.testing.harness import client
from smimages.testing.images import CATALOG
from smimages.testing.registry import aws_env, moto_url, registry  # noqa: F401  (fixtures: real servers on loopback)


@pytest.fixture(scope="module")
def name(one_image, one_image_name):
    return one_image_name


@pytest.fixture(scope="module")
def stem(name):
    """<version>-py<python>-<cpu|gpu>: the moving tag, and the immutable one's start."""
    image = CATALOG[name]
    return f"{image.version()}-py{PYTHON_VERSION.replace('.', '')}-{image.accelerator}"


def make(*args, env=None, timeout=600):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def push_tool(*args, env):
    return subprocess.run([str(REPO / ".venv/bin/python"), "-m", "smimages.push", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env=env)


def pulled_image_id(uri_by_digest):
    """Pull by digest with the CLI, under a timeout (docker-py's pull has none), and return the ID."""
    subprocess.run([DOCKER, "pull", "-q", uri_by_digest], check=True, capture_output=True, timeout=300)
    return client().images.get(uri_by_digest).id


def test_make_push_creates_repositories_pushes_and_pull_by_digest_matches(aws_env, registry, name, stem):
    result = make("push", "REGION=us-west-2", f"REGISTRY={registry}", f"IMAGE={name}")
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((REPO / "out" / "manifest.json").read_text())
    [entry] = manifest["images"]
    assert manifest["account"] == "123456789012"  # moto's account, found through STS
    assert entry["repository"] == f"{PREFIX}/{name}"
    immutable, moving = entry["tags"]
    assert immutable["uri"].startswith(f"{registry}/{PREFIX}/{name}:{stem}-")
    assert moving["uri"] == f"{registry}/{PREFIX}/{name}:{stem}"
    assert immutable["digest"] == moving["digest"] and immutable["digest"].startswith("sha256:")
    assert entry["uri_by_digest"] in result.stdout and immutable["uri"] in result.stdout
    ecr = boto3.client("ecr", region_name="us-west-2")
    [repo] = ecr.describe_repositories(repositoryNames=[f"{PREFIX}/{name}"])["repositories"]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert repo["imageTagMutability"] == "MUTABLE"
    assert pulled_image_id(entry["uri_by_digest"]) == client().images.get(f"{PREFIX}/{name}:latest").id

    again = make("push", "REGION=us-west-2", f"REGISTRY={registry}", f"IMAGE={name}", "TAG=stable")
    assert again.returncode == 0, again.stderr
    assert f"{PREFIX}/{name}: repository exists" in again.stdout and f"{registry}/{PREFIX}/{name}:stable" in again.stdout


def test_immutable_repositories_get_only_the_build_tag(aws_env, registry, name, stem):
    result = push_tool("--region", "us-west-2", "--registry", registry, "--prefix", "immutable",
                       "--mutability", "IMMUTABLE", name, env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    ecr = boto3.client("ecr", region_name="us-west-2")
    [repo] = ecr.describe_repositories(repositoryNames=[f"immutable/{name}"])["repositories"]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    tags = [t["uri"] for t in json.loads((REPO / "out" / "manifest.json").read_text())["images"][0]["tags"]]
    assert len(tags) == 1 and f"{stem}-" in tags[0]


def test_buildspec_phases_in_order_publish_the_image(aws_env, registry, name):
    """A small runner does what CodeBuild does: each phase's commands in order, in one shell each."""
    spec = yaml.safe_load((REPO / "buildspec.yml").read_text())
    env = {**os.environ, "AWS_REGION": "us-west-2", "IMAGE": name, "REGISTRY": registry, "SKIP_TESTS": "1"}
    for phase in ("install", "pre_build", "build", "post_build"):
        for command in spec["phases"][phase]["commands"]:
            result = subprocess.run(["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True,
                                    timeout=900)
            assert result.returncode == 0, f"{phase}: {command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    manifest = json.loads((REPO / "out" / "manifest.json").read_text())
    [entry] = manifest["images"]
    assert entry["registry"] == registry
    assert pulled_image_id(entry["uri_by_digest"]) == client().images.get(f"{PREFIX}/{name}:latest").id
    for artifact in spec["artifacts"]["files"]:
        if "manifest" in artifact:
            assert (REPO / artifact).exists()


@pytest.mark.parametrize("case", ["bad region", "missing credentials", "unreachable registry", "unknown image"])
def test_push_errors_are_one_clear_line(aws_env, registry, name, case):
    env = os.environ.copy()
    args = ["--region", "us-west-2", "--registry", registry, name]
    if case == "bad region":
        args[1] = "mars-west-1"
    elif case == "missing credentials":
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.pop(k, None)
        env.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent")
    elif case == "unreachable registry":
        args[3] = "127.0.0.1:1"
    else:
        args[4] = "no-such-image"
    result = push_tool(*args, env=env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    expected = {"bad region": "push failed: unknown AWS region 'mars-west-1'",
                "missing credentials": "push failed: no AWS credentials found",
                "unreachable registry": "push failed: cannot log in to registry 127.0.0.1:1",
                "unknown image": "push failed: no such image: no-such-image"}[case]
    assert lines[0].startswith(expected), lines[0]


def test_make_push_without_region_says_what_it_needs():
    result = make("push")
    assert result.returncode != 0 and "make push needs REGION=" in result.stderr


def test_labels_and_sbom_list_every_python_package(name):
    labels = client().images.get(f"{PREFIX}/{name}:latest").labels
    for key in ("source", "revision", "version", "created"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    package, version = next(iter(CATALOG[name].frameworks().items()))
    assert f"{package}={version}" in labels["io.sm-images.frameworks"]
    result = make("sbom", f"IMAGE={name}")
    assert result.returncode == 0, result.stderr
    inside = client().containers.run(f"{PREFIX}/{name}:latest", ["pip", "list", "--format=json"], remove=True)
    packages = {(p["name"], p["version"]) for p in json.loads(inside)}
    listed = {tuple(line.strip().split("==")) for line in result.stdout.splitlines() if line.startswith("    ")}
    assert packages <= listed
    bom = json.loads((REPO / "out" / "sbom" / f"{name}.cdx.json").read_text())
    purls = {c["purl"] for c in bom["components"]}
    assert all(f"pkg:pypi/{n.lower()}@{v}" in purls for n, v in packages)
    assert any(p.startswith("pkg:deb/debian/python3.11@") for p in purls)
