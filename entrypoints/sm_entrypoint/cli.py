"""Console scripts: `train` and `serve` (SageMaker runs the image with one of them)."""

import logging
import os
import sys

from . import gpu_driver


def _quiet_toolkit_noise(record):
    """sagemaker-training logs a line for every raw (not JSON-encoded) hyperparameter: SDK 3.x and
    the generic Estimator write them all so, and the lines say nothing wrong."""
    return not str(record.msg).startswith("Failed to parse hyperparameter")


def _logging():
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s [sm-entrypoint] %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_quiet_toolkit_noise)


def train():
    _logging()
    gpu_driver.check()  # first: a driver too old for PyTorch's CUDA is the job log's first line
    from . import train as job

    code = job.run()
    # Leave without interpreter teardown: it resets signal handlers to their defaults, and a stop
    # request landing then (local mode stops every host once one exits) would turn a finished job
    # into a 143. Until here, our handlers make such a request end the job as it is.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve():
    _logging()
    gpu_driver.check()  # first: a driver too old for PyTorch's CUDA is the server log's first line
    from . import serve as server

    sys.exit(server.run())
