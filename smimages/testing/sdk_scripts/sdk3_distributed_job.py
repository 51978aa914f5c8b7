"""Runs one training job through the real SageMaker Python SDK 3.x's own distributed drivers
(ModelTrainer with SourceCode and `distributed=Torchrun()` or `MPI()`, Mode.LOCAL_CONTAINER): the
SDK replaces the image's command with its driver scripts (the `sm_drivers` channel), which run
torchrun or mpirun themselves. Run with the SDK 3.x virtual environment's python; prints one JSON line.

    python sdk3_distributed_job.py --image IMG --root DIR --source-dir D --entry-script E
                                   --distributed {torchrun,mpi} [--instance-count N]
                                   [--process-count-per-node P] [--mpi-options JSON-list]
                                   [--hyperparameters JSON]
"""

import argparse
import json
import os
import sys
import traceback
import uuid

from sagemaker.train.configs import Compute, SourceCode
from sagemaker.train.distributed import MPI, Torchrun
from sagemaker.train.model_trainer import Mode, ModelTrainer

ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--root", required=True, help="local_container_root: artifacts land under it")
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--entry-script", required=True)
    ap.add_argument("--distributed", choices=["torchrun", "mpi"], required=True)
    ap.add_argument("--instance-count", type=int, default=2)
    ap.add_argument("--process-count-per-node", type=int)
    ap.add_argument("--mpi-options", default="[]", help="MPI(mpi_additional_options=...): a JSON list")
    ap.add_argument("--hyperparameters", default="{}")
    args = ap.parse_args()

    # The folder's name becomes docker-compose's project name: unique, so that jobs run side by side.
    args.root = os.path.join(args.root, f"job-{uuid.uuid4().hex[:8]}")
    os.makedirs(args.root, exist_ok=True)
    if args.distributed == "torchrun":
        distributed = Torchrun(process_count_per_node=args.process_count_per_node)
    else:
        distributed = MPI(process_count_per_node=args.process_count_per_node,
                          mpi_additional_options=json.loads(args.mpi_options) or None)
    trainer = ModelTrainer(
        training_image=args.image, training_mode=Mode.LOCAL_CONTAINER, role=ROLE,
        source_code=SourceCode(source_dir=args.source_dir, entry_script=args.entry_script),
        compute=Compute(instance_type="local_cpu", instance_count=args.instance_count),
        distributed=distributed, hyperparameters=json.loads(args.hyperparameters),
        local_container_root=args.root, base_job_name="sm-images-test")
    outcome = {"ok": True}
    try:
        trainer.train(wait=True, logs=True)
    except Exception as e:  # noqa: BLE001 - the test reads the outcome
        traceback.print_exc()
        outcome = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    outcome["artifacts"] = os.path.join(args.root, "compressed_artifacts")
    print("SDK_OUTCOME " + json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
