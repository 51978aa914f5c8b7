"""The model server's settings, from the variables SageMaker (and the user) set."""

import os
from dataclasses import dataclass

from . import cpus
from .errors import ConfigError

BATCH_STRATEGIES = ("MULTI_RECORD", "SINGLE_RECORD")
SUBMIT_SCHEMES = ("file://", "s3://")
SAFE_PORT_RANGE = "SAGEMAKER_SAFE_PORT_RANGE"
MAX_TIMEOUT_S = 3600  # what SageMaker allows an asynchronous endpoint's request


def _int(env, name, default, minimum=1, maximum=None):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {raw!r}")
    return value


def _port_range(env):
    """SAGEMAKER_SAFE_PORT_RANGE ("20000-20999"), where every port the server opens besides the
    bind port must lie when several containers share one network (multi-container endpoints,
    serial inference pipelines); None when it is not set."""
    raw = env.get(SAFE_PORT_RANGE, "").strip()
    if not raw:
        return None
    low, sep, high = raw.partition("-")
    try:
        ports = (int(low), int(high)) if sep else None
    except ValueError:
        ports = None
    if not ports or not 1 <= ports[0] <= ports[1] <= 65535:
        raise ConfigError(f"{SAFE_PORT_RANGE} must be two ports as LOW-HIGH (20000-20999), got {raw!r}")
    return ports


def _bool(env, name):
    raw = env.get(name, "").strip().lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise ConfigError(f"{name} must be true or false, got {env[name]!r}")


@dataclass(frozen=True)
class ServingSettings:
    port: int
    workers: int  # the CPUs granted (cpus.py), 1 a model on a multi-model endpoint, or SAGEMAKER_MODEL_SERVER_WORKERS
    timeout_s: int  # a request (or model_fn) running longer gets its worker replaced
    max_payload_mb: int
    batch_strategy: str
    max_concurrent_transforms: int
    model_dir: str
    program: str  # the inference script's file name
    submit_dir: str  # SAGEMAKER_SUBMIT_DIRECTORY: a folder, a tarball path or an s3:// URL; "" for none
    default_handlers: str  # the image's module of framework defaults, "" for none
    program_named: bool = False  # SAGEMAKER_PROGRAM was set: the script must exist
    multi_model: bool = False  # SAGEMAKER_MULTI_MODEL=true: models come and go through /models
    load_timeout_s: int = 300  # SAGEMAKER_MODEL_LOAD_TIMEOUT: a multi-model load taking longer fails
    workers_set: bool = False  # SAGEMAKER_MODEL_SERVER_WORKERS was set: never fewer for memory
    safe_ports: tuple = None  # SAGEMAKER_SAFE_PORT_RANGE as (low, high): where the server's other ports go

    @property
    def max_payload_bytes(self):
        return self.max_payload_mb * 1024 * 1024

    @property
    def execution_parameters(self):
        """What a batch transform job reads from GET /execution-parameters."""
        return {"MaxConcurrentTransforms": self.max_concurrent_transforms,
                "BatchStrategy": self.batch_strategy, "MaxPayloadInMB": self.max_payload_mb}

    @classmethod
    def from_env(cls, env=None):
        env = os.environ if env is None else env
        multi_model = _bool(env, "SAGEMAKER_MULTI_MODEL")
        # A multi-model endpoint starts one worker a model, as AWS's toolkits configure MMS and
        # TorchServe (default_workers_per_model=1) and its load answer says.
        workers = _int(env, "SAGEMAKER_MODEL_SERVER_WORKERS", 1 if multi_model else cpus.granted())
        strategy = env.get("SAGEMAKER_BATCH_STRATEGY", "").strip().upper() or "MULTI_RECORD"
        if strategy not in BATCH_STRATEGIES:
            raise ConfigError(f"SAGEMAKER_BATCH_STRATEGY must be one of {', '.join(BATCH_STRATEGIES)}, "
                              f"got {env['SAGEMAKER_BATCH_STRATEGY']!r}")
        program = env.get("SAGEMAKER_PROGRAM", "").strip() or "inference.py"
        if os.path.basename(program) != program:
            raise ConfigError(f"SAGEMAKER_PROGRAM must be a file name, got {program!r}")
        submit_dir = env.get("SAGEMAKER_SUBMIT_DIRECTORY", "").strip()
        if "://" in submit_dir and not submit_dir.startswith(SUBMIT_SCHEMES):
            raise ConfigError(f"SAGEMAKER_SUBMIT_DIRECTORY={submit_dir}: only a folder, a .tar.gz path, "
                              "file:// or s3:// is supported")
        return cls(
            port=_int(env, "SAGEMAKER_BIND_TO_PORT", 8080),
            workers=workers,
            timeout_s=_int(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", 60, maximum=MAX_TIMEOUT_S),
            max_payload_mb=_int(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", 6),
            batch_strategy=strategy,
            max_concurrent_transforms=_int(env, "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", workers),
            model_dir=env.get("SM_MODEL_DIR", "").strip() or "/opt/ml/model",
            program=program,
            submit_dir=submit_dir.removeprefix("file://"),
            default_handlers=env.get("SAGEMAKER_DEFAULT_HANDLERS", "").strip(),
            program_named=bool(env.get("SAGEMAKER_PROGRAM", "").strip()),
            multi_model=multi_model,
            load_timeout_s=_int(env, "SAGEMAKER_MODEL_LOAD_TIMEOUT", 300),
            workers_set=bool(env.get("SAGEMAKER_MODEL_SERVER_WORKERS", "").strip()),
            safe_ports=_port_range(env),
        )
