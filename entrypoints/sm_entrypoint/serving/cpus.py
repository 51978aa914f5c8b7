"""How many CPUs this container is granted: the fewer of the CPUs it may be scheduled on (its
cpuset) and the CPU time its cgroup quota allows, rounded up.

SageMaker places a serving container under a quota on a large host (an inference component's
CPU share, a multi-container endpoint's containers): `docker run --cpus 2` on a 96-CPU instance
sees 96 CPUs in its cpuset and may use 2 of them. Sizing the server by the cpuset there starts 96
workers, each with its own copy of the model, in a share of memory meant for a few."""

import math
import os

from .memory import CGROUP, read

V1_CPU_FOLDERS = ("cpu", "cpu,cpuacct")  # cgroup v1 mounts the controller under either name


def cpuset_count():
    """CPUs this process may run on (a container's cpuset, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def quota(root=CGROUP):
    """The CPUs' worth of time the cgroup quota allows (2.5 for 250 ms a 100 ms period), or None
    where there is no quota: cgroup v2's cpu.max, else v1's cfs_quota_us / cfs_period_us."""
    v2 = read(os.path.join(root, "cpu.max"))
    if v2 is not None:
        limit, _, period = v2.partition(" ")
        return None if limit == "max" else _ratio(limit, period or "100000")
    for folder in V1_CPU_FOLDERS:
        limit = read(os.path.join(root, folder, "cpu.cfs_quota_us"))
        if limit is not None:
            return None if int(limit) < 0 else _ratio(limit, read(os.path.join(root, folder, "cpu.cfs_period_us")))
    return None


def _ratio(limit, period):
    period = int(period or 100000)
    return int(limit) / period if period > 0 else None


def granted(root=CGROUP):
    """The CPUs this container is granted: the fewer of its cpuset and its quota, rounded up, at
    least 1."""
    count = cpuset_count()
    allowed = quota(root)
    if allowed is not None:
        count = min(count, math.ceil(allowed - 1e-9))
    return max(1, count)
