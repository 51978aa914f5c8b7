"""The CPUs a container is granted: the fewer of its cpuset and its cgroup quota (v2, v1), rounded up."""

import pytest
from sm_entrypoint.serving import cpus

from smimages.testing.harness import write_tree


@pytest.mark.parametrize("files, quota", [
    ({"cpu.max": "50000 100000\n"}, 0.5),  # v2: docker run --cpus 0.5
    ({"cpu.max": "250000 100000\n"}, 2.5),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1.0),  # v1
    ({"cpu,cpuacct/cpu.cfs_quota_us": "150000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 1.5),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),  # no cgroup files: no quota known
])
def test_the_quota_from_cgroup_v2_or_v1(tmp_path, files, quota):
    assert cpus.quota(write_tree(tmp_path, files)) == quota


@pytest.mark.parametrize("cpuset, files, granted", [
    (2, {"cpu.max": "50000 100000"}, 1),  # a half CPU: one worker, not none
    (2, {"cpu.max": "100000 100000"}, 1),
    (96, {"cpu.max": "200000 100000"}, 2),  # a 2-CPU share of a 96-CPU instance
    (96, {"cpu.max": "250000 100000"}, 3),  # rounded up
    (2, {"cpu.max": "400000 100000"}, 2),  # a quota above the cpuset: the cpuset
    (4, {"cpu.max": "max 100000"}, 4),
])
def test_granted_is_the_fewer_of_cpuset_and_quota_rounded_up(tmp_path, monkeypatch, cpuset, files, granted):
    monkeypatch.setattr(cpus, "cpuset_count", lambda: cpuset)
    assert cpus.granted(write_tree(tmp_path, files)) == granted
