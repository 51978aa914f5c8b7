"""Which images a run tests and may use (smimages.testing.images), from IMAGES and the catalog."""

from smimages.catalog import TESTS
from smimages.testing import images


def test_every_product_by_default_and_those_named_otherwise(monkeypatch):
    monkeypatch.delenv("IMAGES", raising=False)
    assert not {"base", "builder", "mpi"} & set(images.under_test())
    assert {"custom-framework", "mxnet", "pytorch-horovod-cpu"} <= set(images.under_test())
    monkeypatch.setenv("IMAGES", "mxnet custom-framework")
    assert images.under_test() == ["custom-framework", "mxnet"]  # catalog order


def test_a_folders_tests_run_for_the_images_it_applies_to(monkeypatch):
    monkeypatch.setenv("IMAGES", "dgl-rdkit-gpu mxnet")
    assert images.for_test(TESTS / "dgl-rdkit-cpu" / "test_x.py") == ["dgl-rdkit-gpu"]  # a parent's tests
    assert images.for_test(TESTS / "base" / "test_x.py") == ["dgl-rdkit-gpu", "mxnet"]
    assert images.for_test(TESTS / "pytorch-horovod" / "test_x.py") == []
    assert images.for_test(TESTS.parent / "publish" / "test_x.py") == ["dgl-rdkit-gpu", "mxnet"]


def test_a_run_may_use_only_what_its_images_stand_on(monkeypatch):
    monkeypatch.setenv("IMAGES", "mxnet")
    assert images.usable() == {"base", "builder", "mpi", "mxnet"}
    monkeypatch.setenv("IMAGES", "dgl-rdkit-gpu")
    assert images.usable() == {"base", "builder", "dgl-rdkit-cpu", "dgl-rdkit-gpu"}
