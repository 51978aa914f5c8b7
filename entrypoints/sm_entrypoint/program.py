"""What a training job runs, in the order the design gives: a framework module
(SAGEMAKER_TRAINING_MODULE), else the `entrypoint` hyperparameter (a script in the training-code
channel), else `sagemaker_program` from `sagemaker_submit_directory`."""

import importlib
import logging
import os
import sys
import traceback

from . import distributed, environment, source
from .errors import JobError, exit_code_of
from .script import Script
from .settings import Settings

log = logging.getLogger("sm_entrypoint")
CODE_CHANNEL = "training-code"
NOTHING_TO_RUN = "nothing to run: give the 'entrypoint' hyperparameter, or sagemaker_program with sagemaker_submit_directory"


def contained(root, relative, what):
    """`root/relative`, refusing absolute paths and any path (links included) that escapes root."""
    if not relative or os.path.isabs(relative):
        raise JobError(f"{what} {relative!r} must be a path relative to {root}")
    path = os.path.join(root, relative)
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
        raise JobError(f"{what} {relative!r} is refused: it points outside {root}")
    if not os.path.isfile(path):
        raise JobError(f"{what} {relative!r} was not found in {root}")
    return path


class FrameworkModule:
    """`module:function` imported and called in this process, as sagemaker-training's trainer does."""

    def __init__(self, spec):
        self.spec = spec
        self.module, _, self.function = spec.partition(":")
        self.function = self.function or "main"

    def __str__(self):
        return f"framework module {self.module}:{self.function}"

    def run(self):
        log.info("running %s", self)
        try:
            target = getattr(importlib.import_module(self.module), self.function)
        except (ImportError, AttributeError) as e:
            raise JobError(f"SAGEMAKER_TRAINING_MODULE={self.spec}: cannot load it: {type(e).__name__}: {e}") from e
        try:
            target()
        except SystemExit as e:
            if e.code not in (None, 0):
                raise JobError(f"{self} exited with code {e.code}", exit_code=exit_code_of(e)) from e
        except JobError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever it raises ends the job with its cause
            message = " ".join(str(e).split()) or "(no message)"
            raise JobError(f"{self} failed: {type(e).__name__}: {message}",
                           detail=traceback.format_exc(), exit_code=exit_code_of(e)) from e


def entrypoint_script(env, base_dir):
    """The `entrypoint` hyperparameter: a script in the training-code channel."""
    channel = os.path.join(base_dir, "input", "data", CODE_CHANNEL)
    name = str(env.hyperparameters["entrypoint"])
    if not os.path.isdir(channel):
        raise JobError(f"entrypoint {name!r} given but there is no {CODE_CHANNEL!r} channel ({channel})")
    path = contained(channel, name, "entrypoint")
    others = {k: v for k, v in env.hyperparameters.items() if k != "entrypoint"}
    return Script(path, environment.cmd_args(others), os.path.dirname(path), environment.env_vars(env))


def submitted_program(env, settings):
    """`sagemaker_program` from `sagemaker_submit_directory`, run as sagemaker-training would."""
    code_dir = source.stage(env.module_dir, settings.base_dir)
    path = contained(code_dir, env.user_entry_point, "sagemaker_program")
    source.install_requirements(code_dir)
    return distributed.plan(Script(path, env.to_cmd_args(), code_dir, environment.env_vars(env)), env, settings)


def resolve(env, settings):
    """The one thing this job runs (`settings`: sm_entrypoint.settings.Settings)."""
    spec = os.environ.get("SAGEMAKER_TRAINING_MODULE")
    if spec:
        return FrameworkModule(spec)
    if "entrypoint" in env.hyperparameters:
        return entrypoint_script(env, settings.base_dir)
    if env.user_entry_point:
        return submitted_program(env, settings)
    raise JobError(NOTHING_TO_RUN + ", or set SAGEMAKER_TRAINING_MODULE")


def run_user_program(env=None, settings=None):
    """For framework modules: run the job's user program (sagemaker_program or entrypoint) with our
    process handling instead of sagemaker_training.entry_point.run's. A framework module is called
    by the toolkit's contract (no arguments), so the settings are read here where none are given."""
    env = env or environment.load()
    settings = settings or Settings.from_env()
    plan = entrypoint_script(env, settings.base_dir) if "entrypoint" in env.hyperparameters else None
    if plan is None:
        if not env.user_entry_point:
            raise JobError(NOTHING_TO_RUN)
        plan = submitted_program(env, settings)
    sys.stdout.flush()
    plan.run()
