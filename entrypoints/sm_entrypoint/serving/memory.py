"""How much memory this container may still use, how much a model's files would take, and so how
many workers (each loading its own copy) fit: what the server checks before it starts its workers
(fewer than the default, or a clear cause when not one fits) and a multi-model endpoint before it
loads a model (507 when not one fits: the platform then unloads others), instead of leaving the
container to the kernel's OOM killer."""

import os
from dataclasses import dataclass

CGROUP = "/sys/fs/cgroup"


def read(path):
    """A small file's text, stripped; None where it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _stat(path):
    """A cgroup's memory.stat as {name: bytes}."""
    text = read(path) or ""
    return {k: int(v) for k, v in (line.split() for line in text.splitlines() if len(line.split()) == 2)}


def cgroup_limit_and_use(root=CGROUP):
    """(limit, in use) in bytes for this container's cgroup (v2, else v1), page cache that can be
    dropped not counted as in use; None for the limit when there is none."""
    limit = read(os.path.join(root, "memory.max"))
    if limit is not None:  # cgroup v2
        current = int(read(os.path.join(root, "memory.current")) or 0)
        reclaimable = _stat(os.path.join(root, "memory.stat")).get("inactive_file", 0)
        return (None if limit == "max" else int(limit)), max(0, current - reclaimable)
    limit = read(os.path.join(root, "memory", "memory.limit_in_bytes"))
    if limit is not None:  # cgroup v1: "no limit" is a huge number
        usage = int(read(os.path.join(root, "memory", "memory.usage_in_bytes")) or 0)
        reclaimable = _stat(os.path.join(root, "memory", "memory.stat")).get("total_inactive_file", 0)
        value = int(limit)
        return (value if value < 1 << 60 else None), max(0, usage - reclaimable)
    return None, 0


def machine_available(meminfo="/proc/meminfo"):
    """The kernel's MemAvailable in bytes, or None where it cannot be read."""
    for line in (read(meminfo) or "").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def available(root=CGROUP, meminfo="/proc/meminfo"):
    """Bytes this container can still take: the least of its cgroup's headroom and the machine's."""
    limit, used = cgroup_limit_and_use(root)
    candidates = [machine_available(meminfo)]
    if limit is not None:
        candidates.append(max(0, limit - used))
    known = [c for c in candidates if c is not None]
    return min(known) if known else None


def folder_bytes(folder):
    """The size of a model's files (their length, sparse or not: what loading them would read)."""
    total = 0
    for parent, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(parent, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total


@dataclass(frozen=True)
class Fit:
    """How many workers, each holding its own copy of a model, the memory left can hold."""

    workers: int  # 0: not even one copy fits
    wanted: int
    copy_bytes: int  # one copy: the model's files
    free: int  # None: not known (then every worker wanted is taken to fit)

    def says(self, model):
        """One line on what was found: why fewer workers than wanted, or why none."""
        left = f"{mb(self.free)} of memory is free in this container"
        if not self.workers:
            return f"{model} needs about {mb(self.copy_bytes)} (its files) and {left}: not even one copy fits"
        return (f"{self.workers} worker(s), not {self.wanted}: {left}, which holds {self.workers} copies of "
                f"{model} (about {mb(self.copy_bytes)} each, its files)")


def fit(model_dir, wanted, free=None):
    """How many of `wanted` workers fit, each holding a copy of the model in `model_dir` (its
    files' size: what loading them would take), in the memory this container has left."""
    size = folder_bytes(model_dir)
    free = available() if free is None else free
    if free is None or size <= 0:
        return Fit(wanted, wanted, size, free)
    return Fit(min(wanted, free // size), wanted, size, free)


def mb(count):
    return f"{count / (1 << 20):,.0f} MB"
