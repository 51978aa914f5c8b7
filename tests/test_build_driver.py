"""The build driver, driven as a user would: a failed build names the image and the step, and one
commit built twice is the same image."""

import datetime
import os
import subprocess
import sys

from smimages.build import image_id
from smimages.catalog import ROOT as REPO
from smimages.catalog import tag
from smimages.testing.harness import client

DRIVER = [sys.executable, "-m", "smimages.build"]


def drive(images_dir, *names):
    env = {**os.environ, "IMAGES_DIR": str(images_dir)}
    return subprocess.run([*DRIVER, *names], capture_output=True, text=True, env=env, timeout=600, cwd=REPO)


def test_a_failed_step_is_named_with_its_image(tmp_path, image_of):
    image_of("base")
    (tmp_path / "base").symlink_to(REPO / "images" / "base")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "Dockerfile").write_text(
        "ARG BASE_IMAGE=sm-images/base:latest\nFROM ${BASE_IMAGE}\nRUN echo fine\nRUN exit 7\n")
    result = drive(tmp_path, "broken")
    assert result.returncode != 0
    assert "[broken] " in result.stdout  # progress lines carry the image's name
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("build of image 'broken' failed at step [") and "RUN exit 7" in last, last


def test_an_unknown_image_is_refused_with_the_known_ones(tmp_path):
    result = drive(REPO / "images", "no-such-image")
    assert result.returncode != 0
    assert "no such image: no-such-image (have: " in result.stderr and "custom-framework" in result.stderr


def test_building_one_commit_twice_gives_the_same_image_ids(one_image_name):
    """The labels hold nothing of the build's own time (`created` is the commit's), so a rebuild of
    the same tree is the same image: two builds of one commit compare by ID and digest."""
    names = ["base", one_image_name]
    ids = []
    for _ in range(2):
        result = subprocess.run([*DRIVER, *names], capture_output=True, text=True, timeout=1200, cwd=REPO)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        ids.append([image_id(tag(n)) for n in names])
    assert ids[0] == ids[1] and all(ids[0])
    labels = client().images.get(tag(one_image_name)).labels
    commit_time = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=REPO, capture_output=True, text=True).stdout
    created = datetime.datetime.strptime(labels["org.opencontainers.image.created"], "%Y-%m-%dT%H:%M:%SZ")
    assert created.replace(tzinfo=datetime.timezone.utc).timestamp() == int(commit_time)
