"""A distributed job's failure, told by the rank that failed first: its own error, its rank and
its host lead the failure file, instead of the launcher's banner (mpirun's row of dashes):

    user script train.py failed on rank 1 (host algo-2): ValueError: lr must be positive (mpirun exited with code 1)

launcher_stderr.py finds that rank in mpirun's and torchrun's stderr."""

import logging
import os
import re
from dataclasses import dataclass, field

from .. import failure
from ..traceback_line import error_line, last_meaningful_line

log = logging.getLogger("sm_entrypoint")
RANK_LINES = 40  # the failing rank's own last lines, in the failure file's detail
# torch.distributed prints an uncaught exception with every line prefixed `[rank1]: `.
TORCH_PREFIX = re.compile(r"^\[rank(\d+)\]: ?")


@dataclass
class RankError:
    rank: int
    host: str  # None where it cannot be known
    error: str  # one line: the rank's exception, else its last meaningful stderr line
    lines: list = field(default_factory=list)  # the rank's own stderr, launcher prefixes removed

    def where(self):
        return f"rank {self.rank}" + (f" (host {self.host})" if self.host else "")


def without_torch_prefix(lines):
    return [TORCH_PREFIX.sub("", line, count=1) for line in lines]


def from_rank(lines, rank, host):
    """A process that is itself one rank (a plain MASTER_ADDR/RANK script): its own stderr, or
    None where it printed nothing (a stopped rank is told as the signal that stopped it)."""
    own = without_torch_prefix(lines)
    error = error_line(own)
    return RankError(rank, host, error, own) if error else None


def headline(script, found, outcome):
    """`<script> failed on rank R (host H): <error> (<outcome>)`, the error cut so that the whole
    stays within what SageMaker shows (1024 characters)."""
    lead = f"{script} failed on {found.where()}: "
    suffix = f" ({outcome})"
    error = " ".join(found.error.split())
    room = failure.REASON_LIMIT - len(lead) - len(suffix)
    if len(error) > room:
        error = error[: max(room - 3, 0)] + "..."
    return failure.first_line(f"{lead}{error}{suffix}")


def detail(found, launcher, tail):
    """The launcher's last stderr lines, after the failing rank's own (which mpirun's and torchrun's
    banners and the other ranks' errors may have pushed out of them)."""
    if not launcher or not found.lines:
        return "\n".join(tail)
    return (f"{found.where()}, its last stderr lines:\n" + "\n".join(found.lines[-RANK_LINES:]) +
            f"\n\n{launcher}'s last stderr lines:\n" + "\n".join(tail))


class NamesFailingRank:
    """For a Script whose process is a launcher, or one rank: explain_failure(result) -> (cause,
    detail) naming the rank that failed first; Script.run calls it where it exists."""

    launcher = None  # "mpirun", "torchrun"; None where the process is itself a rank

    def find_rank_error(self, lines):
        """A RankError from the process's stderr lines, or None."""
        raise NotImplementedError

    def explain_failure(self, result):
        try:
            found = self.find_rank_error(result.stderr_lines)
        except Exception:  # noqa: BLE001 - a parser's bug must never hide the user's error
            log.exception("could not read which rank failed from the stderr")
            found = None
        if found is None:
            last = last_meaningful_line(result.stderr_lines)
            cause = f"{self} {result.outcome()}"
            return (f"{cause}: {last}" if last else cause), "\n".join(result.stderr_tail)
        outcome = f"{self.launcher} {result.outcome()}" if self.launcher else result.outcome()
        script = f"user script {os.path.basename(self.path)}"
        return headline(script, found, outcome), detail(found, self.launcher, result.stderr_tail)
