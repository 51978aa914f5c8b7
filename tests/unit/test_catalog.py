"""smimages.catalog on a made-up images/ folder: what an image stands on, its versions as build
arguments, and which tests/by_image folders apply to it (a parent's tests run for its children)."""

import pytest

from smimages import catalog
from smimages.publish import PublishError
from smimages.push import chosen


def image_folder(root, name, dockerfile, lock="", variants=None):
    folder = root / name
    folder.mkdir()
    (folder / "Dockerfile").write_text(dockerfile)
    (folder / "requirements.lock").write_text(lock)
    if variants:
        (folder / "variants").write_text(variants)


@pytest.fixture
def images(tmp_path):
    image_folder(tmp_path, "base", "ARG BASE_IMAGE=sm-images/debian:bookworm\nFROM ${BASE_IMAGE}\n")
    image_folder(tmp_path, "builder", "ARG BASE_IMAGE=sm-images/base:latest\nFROM ${BASE_IMAGE}\n")
    image_folder(tmp_path, "torchy", "ARG BASE_IMAGE=sm-images/base:latest\nARG BUILDER_IMAGE=sm-images/builder:latest\n"
                 "FROM ${BUILDER_IMAGE} AS wheels\nFROM ${BASE_IMAGE}\n",
                 lock="torch==2.13.0 \\\n    --hash=sha256:00\nsagemaker-training==5.1.4\n",
                 variants="# variant  args\ncpu VARIANT=cpu\ngpu VARIANT=gpu\n")
    image_folder(tmp_path, "graphs", "ARG BASE_IMAGE=sm-images/torchy-cpu:latest\nFROM ${BASE_IMAGE}\n", lock="dgl==2.1.0\n")
    return catalog.discover(tmp_path)


def test_variants_build_args_and_products(images):
    assert list(images) == ["base", "builder", "graphs", "torchy-cpu", "torchy-gpu"]
    assert images["torchy-gpu"].build_args == {"VARIANT": "gpu"} and images["torchy-gpu"].accelerator == "gpu"
    assert catalog.products(images) == ["graphs", "torchy-cpu", "torchy-gpu"]


def test_an_image_needs_its_parent_first_then_every_image_arg(images):
    assert [i.name for i in catalog.needs(images["torchy-cpu"], images)] == ["base", "builder"]
    assert catalog.parent_of(images["graphs"], images).name == "torchy-cpu"
    assert catalog.parent_of(images["base"], images) is None  # the root is not one of ours
    assert [i.name for i in catalog.lineage(images["graphs"], images)] == ["graphs", "torchy-cpu", "base"]


def test_versions_come_from_the_lock_as_build_arguments(images):
    torchy = images["torchy-cpu"]
    assert torchy.frameworks() == {"torch": "2.13.0", "sagemaker-training": "5.1.4"}
    assert torchy.version() == "2.13.0"
    assert torchy.version_args() == {"TORCH_VERSION": "2.13.0", "SAGEMAKER_TRAINING_VERSION": "5.1.4"}
    assert images["base"].version() == "0"


def test_test_folders_apply_to_the_image_its_variants_and_its_children(images):
    applies = lambda folder, name: catalog.test_folder_applies(folder, images[name], images)  # noqa: E731
    assert applies("base", "graphs") and applies("base", "torchy-gpu")
    assert applies("torchy", "torchy-cpu") and applies("torchy", "torchy-gpu")
    assert applies("torchy-cpu", "graphs") and not applies("torchy-gpu", "graphs")
    assert not applies("graphs", "torchy-cpu") and not applies("builder", "graphs")
    assert catalog.images_for("torchy-cpu", ["torchy-gpu", "graphs", "torchy-cpu"], images) == ["graphs", "torchy-cpu"]


def test_a_dockerfile_without_a_base_image_default_is_refused(tmp_path):
    image_folder(tmp_path, "odd", "FROM debian\n")
    with pytest.raises(ValueError, match="has no `ARG BASE_IMAGE=...` default"):
        catalog.discover(tmp_path)["odd"].base_ref()


def test_publishing_with_no_image_named_takes_the_products_only(images):
    assert chosen([], images) == ["graphs", "torchy-cpu", "torchy-gpu"]  # never base or builder
    assert chosen(["builder"], images) == ["builder"]  # named: as asked
    with pytest.raises(PublishError, match="no such image: nope"):
        chosen(["nope"], images)
