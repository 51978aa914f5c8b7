"""Runs one training job through the real SageMaker Python SDK 2.x local mode (docker-compose).
Run with the SDK 2.x virtual environment's python; prints one JSON line with the outcome.

    python sdk2_job.py --image IMG --output DIR [--source-dir D --entry-point E] [--framework [pytorch|mxnet]]
                       [--instance-count N] [--hyperparameters JSON] [--inputs JSON]
                       [--distribution JSON]   (with --framework: the PyTorch or MXNet estimator's option)
                       [--deploy RECORDS.npy --port P]  (then estimator.deploy() to a local endpoint
                                                         on port P and predict() the records as CSV)
"""

import argparse
import json
import sys
import traceback

import numpy as np
from sagemaker.estimator import Estimator
from sagemaker.local import LocalSession
from sagemaker.mxnet import MXNet
from sagemaker.pytorch import PyTorch

ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--source-dir")
    ap.add_argument("--entry-point")
    ap.add_argument("--framework", nargs="?", const="pytorch", choices=["pytorch", "mxnet"],
                    help="a Framework estimator, PyTorch's or MXNet's (JSON-encoded hyperparameters)")
    ap.add_argument("--instance-count", type=int, default=1)
    ap.add_argument("--hyperparameters", default="{}")
    ap.add_argument("--inputs", default="{}", help='{"channel": "/local/folder"}')
    ap.add_argument("--distribution", help='PyTorch(distribution=...), e.g. {"mpi": {"enabled": true}}')
    ap.add_argument("--deploy", help="an .npy of records to predict through estimator.deploy() after fit")
    ap.add_argument("--port", type=int, default=8080, help="the local endpoint's port on this machine")
    args = ap.parse_args()

    session = LocalSession()
    session.config = {"local": {"local_code": True, "serving_port": args.port}}
    common = dict(image_uri=args.image, role=ROLE, instance_count=args.instance_count, instance_type="local",
                  output_path=f"file://{args.output}", sagemaker_session=session,
                  hyperparameters=json.loads(args.hyperparameters))
    if args.framework:
        extra = {"distribution": json.loads(args.distribution)} if args.distribution else {}
        # the versions a user of AWS's last PyTorch images passes; image_uri still decides the image
        # code_location names a bucket: deploy() wants one before it repacks (to file:// here, no
        # S3 call), and finding the account's default bucket would need credentials.
        framework, version, python = ((PyTorch, "2.6.0", "py312") if args.framework == "pytorch"
                                      else (MXNet, "1.9.0", "py38"))
        est = framework(entry_point=args.entry_point, source_dir=args.source_dir, framework_version=version,
                        py_version=python, code_location="s3://sm-images-local/code", **common, **extra)
    elif args.entry_point:
        est = Estimator(entry_point=args.entry_point, source_dir=args.source_dir, **common)
    else:
        est = Estimator(**common)
    inputs = {name: f"file://{path}" for name, path in json.loads(args.inputs).items()}
    outcome = {"ok": True}
    try:
        est.fit(inputs or None, wait=True, logs=True)
        if args.deploy:
            outcome["predictions"] = deploy_and_predict(est, np.load(args.deploy))
    except Exception as e:  # noqa: BLE001 - the test reads the outcome
        traceback.print_exc()
        outcome = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    job = est.latest_training_job.name if est.latest_training_job else est._current_job_name
    outcome.update(job_name=job, artifacts=args.output)  # local mode writes the tarballs straight there
    print("SDK_OUTCOME " + json.dumps(outcome), flush=True)
    return 0


def deploy_and_predict(estimator, records):
    """The trained model behind a local endpoint (the estimator's own image and entry point), the
    records as one CSV request, the answer as JSON; the endpoint is always deleted."""
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import CSVSerializer

    predictor = estimator.deploy(initial_instance_count=1, instance_type="local",
                                 serializer=CSVSerializer(), deserializer=JSONDeserializer())
    try:
        return predictor.predict(records)
    finally:
        predictor.delete_endpoint()


if __name__ == "__main__":
    sys.exit(main())
