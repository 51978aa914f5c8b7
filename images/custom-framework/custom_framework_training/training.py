"""SAGEMAKER_TRAINING_MODULE=custom_framework_training.training:main

Configures the "framework" from the training environment (thread counts, a framework config
file the user script can read), then runs the user program named by sagemaker_program /
sagemaker_submit_directory through the shared entrypoint, which keeps the toolkit's environment
but forwards SIGTERM and reports the user process's own exit code."""

import json
import logging
import os

from sagemaker_training import environment
from sm_entrypoint.program import run_user_program

log = logging.getLogger("custom_framework_training")
CONFIG_ENV = "CUSTOM_FRAMEWORK_CONFIG"


def configure(env):
    """What a framework sets up before user code runs; returned and exported for the script."""
    framework = {
        "framework": "custom-framework",
        "version": "1.0",
        "num_threads": env.num_cpus,
        "num_gpus": env.num_gpus,
        "hosts": env.hosts,
        "current_host": env.current_host,
        "is_master": env.current_host == env.master_hostname,
        "channels": sorted(env.channel_input_dirs),
    }
    os.environ.setdefault("OMP_NUM_THREADS", str(env.num_cpus))
    os.environ[CONFIG_ENV] = json.dumps(framework)
    log.info("custom framework configured: %s", framework)
    return framework


def train(env):
    configure(env)
    run_user_program(env)


def main():
    train(environment.Environment())
