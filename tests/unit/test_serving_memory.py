"""What the server reads before it starts workers, and a multi-model endpoint before a load: the
memory left (cgroup v2, v1, the machine), a model's size on disk, and how many copies fit."""

import dataclasses

import pytest
from sm_entrypoint.serving import memory, runner
from sm_entrypoint.serving.errors import ConfigError
from sm_entrypoint.serving.settings import ServingSettings

from smimages.testing.harness import write_tree

MEMINFO = "MemTotal:       16000000 kB\nMemAvailable:    8000000 kB\n"


def test_cgroup_v2_headroom_counts_page_cache_as_free(tmp_path):
    root = write_tree(tmp_path / "cg", {"memory.max": "1073741824\n", "memory.current": "536870912\n",
                                   "memory.stat": "anon 400000000\ninactive_file 268435456\n"})
    meminfo = write_tree(tmp_path, {"meminfo": MEMINFO}) / "meminfo"
    assert memory.cgroup_limit_and_use(root) == (1 << 30, 256 << 20)
    assert memory.available(root, meminfo) == (1 << 30) - (256 << 20)


def test_cgroup_v1_and_no_limit(tmp_path):
    v1 = write_tree(tmp_path / "v1", {"memory/memory.limit_in_bytes": str(2 << 30), "memory/memory.usage_in_bytes": str(1 << 30),
                                 "memory/memory.stat": "total_inactive_file 0\n"})
    assert memory.cgroup_limit_and_use(v1) == (2 << 30, 1 << 30)
    unlimited = write_tree(tmp_path / "v1u", {"memory/memory.limit_in_bytes": str(1 << 62),
                                         "memory/memory.usage_in_bytes": "0"})
    meminfo = write_tree(tmp_path, {"meminfo": MEMINFO}) / "meminfo"
    assert memory.cgroup_limit_and_use(unlimited)[0] is None
    assert memory.available(unlimited, meminfo) == 8000000 * 1024  # the machine's MemAvailable
    v2_unlimited = write_tree(tmp_path / "v2", {"memory.max": "max\n", "memory.current": "5\n"})
    assert memory.available(v2_unlimited, meminfo) == 8000000 * 1024


def test_a_model_folder_counts_its_files_lengths_sparse_or_not(tmp_path):
    write_tree(tmp_path / "m", {"code/inference.py": "x" * 10, "params": "y" * 90})
    with open(tmp_path / "m" / "sparse.bin", "wb") as f:
        f.truncate(1 << 30)
    (tmp_path / "m" / "link").symlink_to(tmp_path / "m" / "sparse.bin")
    assert memory.folder_bytes(tmp_path / "m") == 100 + (1 << 30)
    assert memory.mb(3 << 30) == "3,072 MB"


def test_as_many_workers_as_copies_fit_and_what_is_said(tmp_path):
    model = write_tree(tmp_path / "m", {"weights": "x" * (3 << 20)})
    found = memory.fit(model, 4, free=7 << 20)
    assert found.workers == 2
    assert found.says("the model") == ("2 worker(s), not 4: 7 MB of memory is free in this container, which holds "
                                       "2 copies of the model (about 3 MB each, its files)")
    none = memory.fit(model, 4, free=2 << 20)
    assert none.workers == 0 and none.says("the model").endswith("not even one copy fits")
    assert memory.fit(model, 4, free=1 << 30).workers == 4
    assert memory.fit(tmp_path / "empty", 4, free=1).workers == 4  # no files: nothing to estimate


def test_the_server_starts_the_workers_the_memory_holds_and_refuses_a_model_that_cannot_fit(tmp_path, monkeypatch):
    model = write_tree(tmp_path / "m", {"weights": "x" * (3 << 20)})
    monkeypatch.setattr(memory, "available", lambda: 7 << 20)
    default = ServingSettings.from_env({"SM_MODEL_DIR": str(model)})
    fitted = runner.fit_in_memory(dataclasses.replace(default, workers=4, max_concurrent_transforms=4))
    assert (fitted.workers, fitted.max_concurrent_transforms) == (2, 2)  # batch transform is told too
    chosen = ServingSettings.from_env({"SM_MODEL_DIR": str(model), "SAGEMAKER_MODEL_SERVER_WORKERS": "4"})
    assert runner.fit_in_memory(chosen).workers == 4  # the user's count wins
    monkeypatch.setattr(memory, "available", lambda: 1 << 20)
    with pytest.raises(ConfigError, match=r"the model in .* needs about 3 MB \(its files\) and 1 MB of memory is free"):
        runner.fit_in_memory(default)
