"""The shared server sized from what the container is granted, as SageMaker places it on a share of
an instance (inference components, multi-container endpoints): workers from the CPU quota, and
only as many copies of the model as the memory limit holds. The server is framework-free: once."""

import pytest

from smimages.testing.harness import ServingContainer, write_tree
from smimages.testing.multi_model import MultiModelEndpoint

# A model whose copy in each worker is as big as its weights file: what the memory check assumes.
HOLDS_ITS_WEIGHTS = """\
import os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.bin"), "rb") as f:
        model = bytearray(os.path.getsize(f.name))
        f.readinto(model)  # one copy, not a bytes read and then a copy of it
        return model

def transform_fn(model, body, content_type, accept):
    return f"{len(model)} bytes in {os.getpid()}", "text/plain"
"""
MB = 1 << 20


def weighted_model(folder, megabytes):
    """A model folder with a weights file of `megabytes` (sparse: nothing on disk)."""
    write_tree(folder, {"code/inference.py": HOLDS_ITS_WEIGHTS})
    with open(folder / "weights.bin", "wb") as f:
        f.truncate(megabytes * MB)
    return folder


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    return weighted_model(tmp_path_factory.mktemp("small") / "model", 1)


@pytest.mark.parametrize("cpus", [0.5, 1])
def test_a_cpu_quota_sets_the_default_workers_and_threads(one_image, small_model, cpus):
    with ServingContainer(one_image, small_model, nano_cpus=int(cpus * 1e9)) as s:
        s.wait_ready()
        assert "1 worker(s)" in s.logs() and "OMP_NUM_THREADS=1 in each of 1 worker(s)" in s.logs()
        assert s.request("POST", "/invocations", b"x", {"Content-Type": "text/plain"})[0] == 200


def test_without_a_quota_the_cpuset_sets_them_and_the_users_workers_always_win(one_image, small_model):
    with ServingContainer(one_image, small_model, cpuset_cpus="0") as s:
        s.wait_ready()
        assert "OMP_NUM_THREADS=1 in each of 1 worker(s)" in s.logs()
    with ServingContainer(one_image, small_model, nano_cpus=int(1e9),
                          env={"SAGEMAKER_MODEL_SERVER_WORKERS": "3", "OMP_NUM_THREADS": "2"}) as s:
        s.wait_ready()
        assert "OMP_NUM_THREADS=2 in each of 3 worker(s)" in s.logs()


def test_a_memory_limit_holding_one_copy_starts_one_worker_and_says_why(one_image, tmp_path):
    """600 MB of weights, 1 GB, 2 CPUs: two copies would not fit (they were killed and restarted for
    ever); one worker starts, and answers."""
    model = weighted_model(tmp_path / "model", 600)
    with ServingContainer(one_image, model, mem_limit="1g", memswap_limit="1g", nano_cpus=int(2e9)) as s:
        s.wait_ready(timeout_s=120)
        assert "1 worker(s), not 2: " in s.logs()
        status, body, _ = s.request("POST", "/invocations", b"x", {"Content-Type": "text/plain"})
        assert status == 200 and body.startswith(b"629145600 bytes")


@pytest.mark.expect_log_errors("a model that cannot fit, on purpose")
def test_a_memory_limit_that_cannot_hold_one_copy_stops_the_server_with_the_cause(one_image, tmp_path):
    model = weighted_model(tmp_path / "model", 600)
    with ServingContainer(one_image, model, mem_limit="400m", memswap_limit="400m") as s:
        assert s.tracked.exit_code(60) == 2
        assert "serve cannot start: the model in /opt/ml/model needs about 600 MB (its files) and " in s.logs()
        assert "not even one copy fits" in s.logs()


@pytest.mark.expect_log_errors("a model_fn killed by the OOM killer, on purpose")
def test_a_model_fn_killed_for_memory_stops_the_server_instead_of_restarting_for_ever(one_image, tmp_path):
    """Small files, a model_fn that takes 1 GB in 400 MB: the memory check cannot see it coming."""
    write_tree(tmp_path / "model", {"code/inference.py": "def model_fn(d):\n    return bytearray(1 << 30)\n"})
    with ServingContainer(one_image, tmp_path / "model", mem_limit="400m", memswap_limit="400m",
                          env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}) as s:
        assert s.tracked.exit_code(60) == 3
        assert "the kernel's OOM killer ended worker" in s.logs()
        assert s.logs().count("Booting worker") == 1


def test_a_multi_model_endpoint_loads_a_model_that_fits_and_answers_507_for_one_that_does_not(one_image, tmp_path):
    """One worker a model by default (AWS's toolkits set MMS and TorchServe so)."""
    for name in ("big", "huge"):
        weighted_model(tmp_path / name / "model", 600 if name == "big" else 2000)
    with MultiModelEndpoint(one_image, tmp_path, mem_limit="1g", memswap_limit="1g", nano_cpus=int(2e9)) as mme:
        mme.wait_ready()
        assert mme.load("big") == (200, {"status": 'Model "big" Version: 1.0 registered with 1 initial workers'})
        status, answer = mme.load("huge")
        assert status == 507 and answer["message"].startswith("model huge needs about 2,000 MB (its files) and ")
        assert mme.invoke("big", b"x", "text/plain")[0] == 200
