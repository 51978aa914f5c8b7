"""dgl-rdkit-cpu's own build (its Tox21 jobs, in test_dgl_rdkit_jobs.py, run for its children too)."""

from smimages.testing.harness import client


def test_the_torch_source_is_labelled(image):
    labels = client().images.get(image).attrs["Config"]["Labels"]
    assert labels["io.sm-images.torch-source"] == "PyPI (CUDA 12.1 build, runs on CPU)"


def test_the_cpu_image_carries_no_fallback_notice(image_of):
    config = client().images.get(image_of("dgl-rdkit-cpu")).attrs["Config"]
    assert not [e for e in config["Env"] if e.startswith("SM_IMAGE_NOTICE=")]
