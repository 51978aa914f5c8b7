"""The pytest plugin every test run loads (tests/conftest.py): the Docker client on PATH, the
images under test, and the fixtures that hand a test its image.

- `image_name` / `image`: a test that asks for them runs once for each image under test that its
  tests/by_image folder applies to (a parent image's tests run for its children: smimages.catalog).
- `one_image` / `one_image_name`: the first of those, for tests of what the images share (the
  entrypoint, the SDK path, publishing) where one run is enough.
- `image_of(name)`: the local tag of any image; fails, never skips, when it was not built.
- `moto`: moto's S3 API on the Docker bridge's gateway, where the host and containers reach it
  (one per test module).
- After each test, the logs of the containers it ran must hold no `Traceback` or `ERROR` line,
  unless the test expects them (HostResult.cause(), or @pytest.mark.expect_log_errors("why")).
"""

import os

import pytest

from smimages.catalog import ROOT, tag
from smimages.testing import images
from smimages.testing.docker_shim import folder as docker_shim
from smimages.testing.harness import WATCH
from smimages.testing.s3_server import S3Server

LOG_TAIL = 80

# Unit tests import sagemaker_training, which creates /opt/ml on import unless told where to look.
os.environ.setdefault("SAGEMAKER_BASE_DIR", str(ROOT / "build" / "unit-opt-ml"))
os.environ["PATH"] = f"{docker_shim()}:{os.environ['PATH']}"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-west-2")


def pytest_configure(config):
    config.addinivalue_line("markers", "expect_log_errors(why): the containers this test runs may log errors")
    config.addinivalue_line("markers", "needs_images(*names): run only when every one of these is under test")


def pytest_collection_modifyitems(config, items):
    """Deselect (never pass) the tests that need an image this run does not test."""
    testing = set(images.under_test())
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("needs_images")
        (drop if marker and not set(marker.args) <= testing else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows the last lines of every container it ran: CI keeps nothing else."""
    report = (yield).get_result()
    if report.failed:
        for name, logs in WATCH.logs:
            report.sections.append((f"container {name}, last {LOG_TAIL} lines", "\n".join(logs.splitlines()[-LOG_TAIL:])))


@pytest.fixture(autouse=True)
def _no_unexpected_log_errors(request):
    WATCH.start()
    yield
    found = WATCH.unexpected()
    if found and not request.node.get_closest_marker("expect_log_errors"):
        lines = "\n".join(f"  {name}: {line}" for name, line in found)
        pytest.fail(f"unexpected error lines in container logs (mark the test expect_log_errors if meant):\n{lines}")


def _require(name):
    if name not in images.usable():
        pytest.fail(f"this test uses {name}, which is neither under test nor what an image under test is built from")
    if not images.built(name):
        pytest.fail(f"{tag(name)} is not built: run `make build IMAGE={name}`")
    return tag(name)


def pytest_generate_tests(metafunc):
    if "image_name" in metafunc.fixturenames:
        names = images.for_test(metafunc.definition.path)
        metafunc.parametrize("image_name", names, ids=names, scope="session")


@pytest.fixture(scope="session")
def image_of():
    return _require


@pytest.fixture(scope="session")
def image(image_name):
    return _require(image_name)


@pytest.fixture(scope="module")
def one_image_name(request):
    names = images.for_test(request.node.path)
    if not names:
        pytest.fail(f"none of the images under test ({' '.join(images.under_test())}) is one these tests apply to")
    return names[0]


@pytest.fixture(scope="module")
def one_image(one_image_name):
    return _require(one_image_name)


@pytest.fixture(scope="module")
def moto():
    server = S3Server.start()
    yield server
    server.stop()
