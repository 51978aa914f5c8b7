"""Runs one training job through the real SageMaker Python SDK 2.x local mode (docker-compose).
Run with the SDK 2.x virtual environment's python; prints one JSON line with the outcome.

    python sdk2_job.py --image IMG --output DIR [--source-dir D --entry-point E] [--framework]
                       [--instance-count N] [--hyperparameters JSON] [--inputs JSON]
                       [--distribution JSON]   (with --framework: the PyTorch estimator's option)
"""

import argparse
import json
import sys
import traceback

from sagemaker.estimator import Estimator
from sagemaker.local import LocalSession
from sagemaker.pytorch import PyTorch

ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--source-dir")
    ap.add_argument("--entry-point")
    ap.add_argument("--framework", action="store_true", help="a Framework estimator (JSON-encoded hyperparameters)")
    ap.add_argument("--instance-count", type=int, default=1)
    ap.add_argument("--hyperparameters", default="{}")
    ap.add_argument("--inputs", default="{}", help='{"channel": "/local/folder"}')
    ap.add_argument("--distribution", help='PyTorch(distribution=...), e.g. {"mpi": {"enabled": true}}')
    args = ap.parse_args()

    session = LocalSession()
    session.config = {"local": {"local_code": True}}
    common = dict(image_uri=args.image, role=ROLE, instance_count=args.instance_count, instance_type="local",
                  output_path=f"file://{args.output}", sagemaker_session=session,
                  hyperparameters=json.loads(args.hyperparameters))
    if args.framework:
        extra = {"distribution": json.loads(args.distribution)} if args.distribution else {}
        est = PyTorch(entry_point=args.entry_point, source_dir=args.source_dir, **common, **extra)
    elif args.entry_point:
        est = Estimator(entry_point=args.entry_point, source_dir=args.source_dir, **common)
    else:
        est = Estimator(**common)
    inputs = {name: f"file://{path}" for name, path in json.loads(args.inputs).items()}
    outcome = {"ok": True}
    try:
        est.fit(inputs or None, wait=True, logs=True)
    except Exception as e:  # noqa: BLE001 - the test reads the outcome
        traceback.print_exc()
        outcome = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    job = est.latest_training_job.name if est.latest_training_job else est._current_job_name
    outcome.update(job_name=job, artifacts=args.output)  # local mode writes the tarballs straight there
    print("SDK_OUTCOME " + json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
