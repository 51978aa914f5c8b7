"""dgl-rdkit-cpu: the Tox21 workload's jobs (shared with dgl-rdkit-gpu in by_image/dgl_rdkit_jobs.py)."""

import pytest
from by_image.dgl_rdkit_jobs import *  # noqa: F403 - the shared tests run here against this image
from harness import client


@pytest.fixture
def image_name():
    return "dgl-rdkit-cpu"


def test_the_torch_source_is_labelled_and_no_fallback_notice(image):
    config = client().images.get(image).attrs["Config"]
    assert config["Labels"]["io.sm-images.torch-source"] == "PyPI (CUDA 12.1 build, runs on CPU)"
    assert not [e for e in config["Env"] if e.startswith("SM_IMAGE_NOTICE=")]
