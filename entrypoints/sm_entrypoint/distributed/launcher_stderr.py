"""The rank that failed first, read from a launcher's stderr, with its own error and lines.

mpirun (run with --tag-output) prefixes each rank's line with `[jobid,rank]<stderr>:` and names the
first rank to fail in its summary. torchrun names it in its `Root Cause` block; the rank's own lines
come unprefixed, or `[rankN]: `-prefixed by torch.distributed, above torchrun's own traceback."""

import re

from ..traceback_line import TRACEBACK, exception_line, last_meaningful_line
from .rank_error import TORCH_PREFIX, RankError, without_torch_prefix

MPI_TAG = re.compile(r"^\[\d+,(\d+)\]<(stdout|stderr)>:(.*)$")
# `Process name: [[14315,1],1]`, or for a signal:
# `mpirun noticed that process rank 1 with PID 0 on node algo-2 exited on signal 9 (Killed).`
MPI_FIRST_FAILED = re.compile(r"Process name:\s*\[\[\d+,\d+\],(\d+)\]")
MPI_SIGNALLED = re.compile(r"mpirun noticed that process rank (\d+) .* exited on (signal [^.]*)")
TORCHRUN_OWN = ("torch.distributed.elastic.",)  # torchrun's own exception (ChildFailedError, ...)
ROOT_CAUSE = "Root Cause (first observed failure):"
FIELD = re.compile(r"^\s+(\w+)\s*: ?(.*)$")  # `  rank      : 1 (local_rank: 0)`
# torchrun's own log lines: `E1130 04:09:51.311000 12 torch/distributed/elastic/...:1002] ...`
TORCH_LOG = re.compile(r"^[DIWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\] ")


def mpi_ranks_stderr(lines):
    """{rank: its stderr lines, untagged} from mpirun --tag-output's lines."""
    by_rank = {}
    for line in lines:
        tagged = MPI_TAG.match(line)
        if tagged and tagged.group(2) == "stderr":
            by_rank.setdefault(int(tagged.group(1)), []).append(tagged.group(3))
    return {rank: without_torch_prefix(own) for rank, own in by_rank.items()}


# Errors a rank raises because another one failed first: never the cause while a rank has another.
KNOCK_ON = ("HorovodInternalError", "Connection closed by peer", "Connection reset by peer",
            "SignalException", "DistBackendError")


def first_raised(lines, by_rank):
    """The rank whose own error came first in mpirun's stderr, knock-on errors (KNOCK_ON) last:
    mpirun's summary names the first rank to EXIT, which may be one that a failing peer brought
    down (Horovod shuts every rank down when one raises), not the one that raised."""
    order = []
    for line in lines:
        tagged = MPI_TAG.match(line)
        if tagged and tagged.group(2) == "stderr" and tagged.group(3).strip() == TRACEBACK:
            rank = int(tagged.group(1))
            if rank not in order:
                order.append(rank)
    raised = [rank for rank in order if exception_line(by_rank.get(rank, []))]
    first_cause = [r for r in raised if not any(k in exception_line(by_rank[r]) for k in KNOCK_ON)]
    return (first_cause or raised or [None])[0]


def mpi_first_failed(lines, by_rank):
    """(rank, how mpirun saw it end) of the first rank to fail, else (None, '')."""
    raised = first_raised(lines, by_rank)
    if raised is not None:
        return raised, ""
    for line in lines:
        if m := MPI_FIRST_FAILED.search(line):
            return int(m.group(1)), ""
        if m := MPI_SIGNALLED.search(line):
            return int(m.group(1)), f"it exited on {m.group(2)}"
    return None, ""


def from_mpirun(lines, hosts, nproc):
    """The first rank mpirun saw fail, on the host that `--map-by slot` over `host:nproc` gives
    it (rank // nproc), or on no named host where `hosts` is None."""
    by_rank = mpi_ranks_stderr(lines)
    rank, ending = mpi_first_failed(lines, by_rank)
    if rank is None:
        return None
    own = by_rank.get(rank, [])
    host = hosts[rank // nproc] if hosts and rank // nproc < len(hosts) else None
    error = exception_line(own) or ending or last_meaningful_line(own) or "it printed nothing to stderr"
    return RankError(rank, host, error, own)


def torchrun_root_cause(lines):
    """The fields of torchrun's Root Cause block ({"rank": "1 (local_rank: 0)", ...}), or {}."""
    starts = [i for i, line in enumerate(lines) if line.strip() == ROOT_CAUSE]
    fields = {}
    for line in lines[starts[-1] + 1:] if starts else []:
        if m := FIELD.match(line):
            fields.setdefault(m.group(1), m.group(2).strip())
        elif fields:
            break  # the block's closing row of equals signs
    return fields


def torchrun_rank_lines(lines, rank):
    """The rank's own lines: those torch.distributed prefixed with its rank where there are any,
    else the lines that are neither torchrun's log lines nor another rank's prefixed ones."""
    prefixed = [TORCH_PREFIX.sub("", line, count=1) for line in lines
                if (m := TORCH_PREFIX.match(line)) and int(m.group(1)) == rank]
    if prefixed:
        return prefixed
    return [line for line in above_torchrun_report(lines) if not TORCH_LOG.match(line) and not TORCH_PREFIX.match(line)]


def above_torchrun_report(lines):
    """The lines before torchrun's own traceback (the one that ends in ChildFailedError)."""
    own = [i for i, line in enumerate(lines) if line.startswith(TORCHRUN_OWN)]
    starts = [i for i, line in enumerate(lines[: own[-1]]) if line.strip() == TRACEBACK] if own else []
    return lines[: starts[-1]] if starts else lines


def torchrun_ending(fields):
    """What torchrun says of a rank that printed no traceback: the signal, else its exit code."""
    said = fields.get("traceback", "")
    if said.startswith("Signal"):
        return said
    return f"it exited with code {fields.get('exitcode', '?').split(' ')[0]}"


def from_torchrun(lines, host):
    """The rank torchrun names as the root cause. `host` is this host: torchrun reports the ranks it
    started itself, and names its host by the container's own name, not algo-N."""
    fields = torchrun_root_cause(lines)
    rank = re.match(r"\d+", fields.get("rank", ""))
    if not rank:
        return None
    own = torchrun_rank_lines(lines, int(rank.group()))
    error = exception_line(own, ignore=TORCHRUN_OWN) or torchrun_ending(fields)
    return RankError(int(rank.group()), host, error, own)
