"""Runs one training job through the real SageMaker Python SDK 3.x (ModelTrainer,
Mode.LOCAL_CONTAINER). Run with the SDK 3.x virtual environment's python; prints one JSON line.
With --distributed, the SDK's own distributed drivers (`distributed=Torchrun()` or `MPI()`): the
SDK replaces the image's command with its driver scripts (the `sm_drivers` channel), which run
torchrun or mpirun themselves.

    python sdk3_job.py --image IMG --root DIR [--source-dir D --entry-script E]
                       [--hyperparameters JSON] [--inputs JSON] [--instance-count N]
                       [--distributed {torchrun,mpi} [--process-count-per-node P] [--mpi-options JSON-list]]
"""

import argparse
import json
import os
import sys
import traceback
import uuid

from sagemaker.train.configs import Compute, InputData, SourceCode
from sagemaker.train.distributed import MPI, Torchrun
from sagemaker.train.model_trainer import Mode, ModelTrainer

ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--root", required=True, help="local_container_root: artifacts land under it")
    ap.add_argument("--source-dir")
    ap.add_argument("--entry-script")
    ap.add_argument("--instance-count", type=int, default=1)
    ap.add_argument("--hyperparameters", default="{}")
    ap.add_argument("--inputs", default="{}", help='{"channel": "/local/folder"}')
    ap.add_argument("--distributed", choices=["torchrun", "mpi"], help="the SDK's own distributed driver")
    ap.add_argument("--process-count-per-node", type=int)
    ap.add_argument("--mpi-options", default="[]", help="MPI(mpi_additional_options=...): a JSON list")
    args = ap.parse_args()

    # The folder's name becomes docker-compose's project name: unique, so that jobs run side by side.
    args.root = os.path.join(args.root, f"job-{uuid.uuid4().hex[:8]}")
    os.makedirs(args.root, exist_ok=True)
    source = SourceCode(source_dir=args.source_dir, entry_script=args.entry_script) if args.source_dir else None
    trainer = ModelTrainer(
        training_image=args.image, training_mode=Mode.LOCAL_CONTAINER, role=ROLE, source_code=source,
        compute=Compute(instance_type="local_cpu", instance_count=args.instance_count),
        hyperparameters=json.loads(args.hyperparameters), local_container_root=args.root,
        base_job_name="sm-images-test", distributed=distributed(args),
        input_data_config=[InputData(channel_name=name, data_source=path)
                           for name, path in json.loads(args.inputs).items()] or None)
    outcome = {"ok": True}
    try:
        trainer.train(wait=True, logs=True)
    except Exception as e:  # noqa: BLE001 - the test reads the outcome
        traceback.print_exc()
        outcome = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    outcome["artifacts"] = os.path.join(args.root, "compressed_artifacts")
    print("SDK_OUTCOME " + json.dumps(outcome), flush=True)
    return 0


def distributed(args):
    """The SDK's driver --distributed names, or None (the image's own command)."""
    if args.distributed == "torchrun":
        return Torchrun(process_count_per_node=args.process_count_per_node)
    if args.distributed == "mpi":
        return MPI(process_count_per_node=args.process_count_per_node,
                   mpi_additional_options=json.loads(args.mpi_options) or None)
    return None


if __name__ == "__main__":
    sys.exit(main())
