"""The benches' table layout, and that every bench module imports (CI runs no bench: an import
that broke would otherwise show only when someone runs `make bench`)."""

import importlib
import pkgutil

import pytest

import smimages.bench
from smimages.bench.tables import grid


def test_a_table_aligns_text_left_and_numbers_right():
    assert grid(["image", "MB"], [["mxnet", "833"], ["custom-framework", "487"]]).splitlines() == [
        "image              MB",
        "----------------  ---",
        "mxnet             833",
        "custom-framework  487",
    ]


@pytest.mark.parametrize("name", [m.name for m in pkgutil.iter_modules(smimages.bench.__path__) if m.name != "tables"])
def test_every_bench_module_imports_and_has_its_command(name):
    assert callable(importlib.import_module(f"smimages.bench.{name}").main)
