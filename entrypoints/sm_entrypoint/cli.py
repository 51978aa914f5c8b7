"""Console scripts: `train` and `serve` (SageMaker runs the image with one of them)."""

import logging
import sys


def _logging():
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s [sm-entrypoint] %(levelname)s %(message)s")


def train():
    _logging()
    from . import train as job

    sys.exit(job.run())


def serve():
    _logging()
    from . import serve as server

    sys.exit(server.run())
