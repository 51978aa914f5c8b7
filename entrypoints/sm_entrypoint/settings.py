"""Our own knobs, read from the environment: each wait is bounded by one of them."""

import os
from dataclasses import dataclass


def seconds(name, default, env=None, error=ValueError):
    """A positive number of seconds from the environment variable `name`; `error` says what is
    wrong with it (each caller raises its own kind: a job's, the server's)."""
    raw = (os.environ if env is None else env).get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise error(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise error(f"{name} must be positive, got {raw!r}")
    return value


def integer(name, default, env=None, error=ValueError):
    """A whole number from the environment variable `name` (a port, a size)."""
    raw = (os.environ if env is None else env).get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise error(f"{name} must be a whole number, got {raw!r}") from None


BASE_DIR = "/opt/ml"
FAILURE_LIMIT = 16384


@dataclass(frozen=True)
class Settings:
    base_dir: str
    host_wait_s: float  # how long to wait for the other hosts to resolve and answer
    master_wait_s: float  # how long a finished worker waits for the master to finish
    barrier_port: int  # where each host answers the others (and, one port up, the MPI key: key_port)
    failure_limit: int  # the failure file's size limit (SageMaker shows the first 1024 chars)

    @classmethod
    def from_env(cls):
        return cls(
            base_dir=os.environ.get("SAGEMAKER_BASE_DIR", BASE_DIR),
            host_wait_s=seconds("SM_ENTRYPOINT_HOST_WAIT_SECONDS", 300.0),
            master_wait_s=seconds("SM_ENTRYPOINT_MASTER_WAIT_SECONDS", 3600.0),
            barrier_port=integer("SM_ENTRYPOINT_BARRIER_PORT", 7479),
            failure_limit=integer("SM_ENTRYPOINT_FAILURE_LIMIT", FAILURE_LIMIT),
        )

    @classmethod
    def for_reporting(cls):
        """Enough to write the failure file when the settings themselves are wrong."""
        return cls(os.environ.get("SAGEMAKER_BASE_DIR", BASE_DIR), 0.0, 0.0, 0, FAILURE_LIMIT)

    @property
    def key_port(self):
        """Where the MPI master hands its public SSH key to the workers: the port after barrier_port."""
        return self.barrier_port + 1

    @property
    def failure_file(self):
        return os.path.join(self.base_dir, "output", "failure")

    @property
    def success_file(self):
        return os.path.join(self.base_dir, "output", "success")
