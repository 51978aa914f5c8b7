"""Which images a test run is about: every product image, or those named in IMAGES
(space-separated), and which of them each tests/by_image folder's tests apply to (smimages.catalog)."""

import os
from pathlib import Path

from smimages.build import exists
from smimages.catalog import TESTS, discover, images_for, lineage, needs, products, tag

CATALOG = discover()


def under_test():
    """The images this run tests, in catalog order."""
    named = os.environ.get("IMAGES", "").split()
    return [n for n in CATALOG if n in named] + [n for n in named if n not in CATALOG] if named else products(CATALOG)


def test_folder(path):
    """The tests/by_image/<folder> a test file lives under, or None for tests outside it."""
    try:
        return Path(path).resolve().relative_to(TESTS).parts[0]
    except ValueError:
        return None


def for_test(path):
    """The images under test that the tests in `path` apply to: those its tests/by_image folder
    applies to (a parent image's tests run for its children), every one for tests outside it."""
    folder = test_folder(path)
    names = under_test()
    return images_for(folder, names, CATALOG) if folder else names


def built(name):
    return exists(tag(name))


def usable():
    """The images a run may use: those under test and every image they are built from."""
    found = set()
    for name in under_test():
        if name in CATALOG:
            for image in lineage(CATALOG[name], CATALOG):
                found |= {image.name, *(i.name for i in needs(image, CATALOG))}
    return found
