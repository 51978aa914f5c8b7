"""The build driver, driven as a user would: a failed build names the image and the step."""

import os
import subprocess
import sys

from smimages.catalog import ROOT as REPO

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
