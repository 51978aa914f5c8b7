"""A user script run as its own process: the one shape every plan takes (program.py picks it,
distributed/ wraps it for mpirun, torchrun or one rank of several hosts)."""

import logging
import os

from . import process
from .errors import JobError

log = logging.getLogger("sm_entrypoint")


def script_command(path, args):
    """How a script runs: Python for .py (and anything not executable), sh for .sh."""
    if path.endswith(".sh"):
        return ["/bin/sh", path, *args]
    if not path.endswith(".py") and os.access(path, os.X_OK):
        return [path, *args]
    return [process.python(), path, *args]


class Script:
    """A user script run as its own process, with the SM_* environment and `--key value` args."""

    def __init__(self, path, args, cwd, env_vars):
        self.path, self.args, self.cwd, self.env_vars = path, args, cwd, env_vars

    def __str__(self):
        return f"user script {os.path.basename(self.path)}"

    def command(self):
        return script_command(self.path, self.args)

    def run(self):
        cmd = self.command()
        log.info("running %s", " ".join(cmd))
        result = process.run(cmd, env={**os.environ, **self.env_vars}, cwd=self.cwd)
        if result.returncode != 0:
            # A launcher (mpirun, torchrun) or one rank of a group names the rank that failed first.
            explain = getattr(self, "explain_failure", None)
            cause, detail = explain(result) if explain else (result.describe(str(self)),
                                                             "\n".join(result.stderr_tail))
            raise JobError(cause, detail=detail, exit_code=result.exit_code)
