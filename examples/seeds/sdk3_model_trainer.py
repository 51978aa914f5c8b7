"""SDK 3.x: `ModelTrainer` in local mode (`training_mode=Mode.LOCAL_CONTAINER`) with its code and
data in S3, as a notebook for SDK 3.x writes it: the data uploaded with `sess.upload_data`, the
code as `SourceCode(source_dir=<its S3 prefix>, entry_script='train.py')`, the channels as
`InputData(channel_name, data_source=<S3 prefix>)`, image sm-images/custom-framework; then the same
job without SourceCode, its code a sourcedir.tar.gz in S3 that the image's `train` fetches itself.

`seedlib.local_session()` is SDK 2.x's; `local_session()` here is its 3.x counterpart
(`sagemaker.core.local.LocalSession`, same arguments). SDK 3.x local mode downloads the S3
channels (the code one included) on this machine and mounts them, and tells the container the S3
endpoint as S3_ENDPOINT_URL, only when the last channel it looks at is an S3 one. It leaves the
model on disk (`<local_container_root>/compressed_artifacts/model.tar.gz`, output_data_config
ignored): the replay puts it where SageMaker would, under the trainer's S3 output path.
"""

import json
import os
import subprocess
import sys
import tarfile
import uuid

import boto3
import seedlib
from sagemaker.core.local.local_session import LocalSession
from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig, SourceCode
from sagemaker.train.model_trainer import Mode, ModelTrainer

HERE = os.path.dirname(os.path.abspath(__file__))


def local_session():
    """SDK 3.x's LocalSession on the S3 server (seedlib.local_session() is SDK 2.x's)."""
    return LocalSession(boto_session=boto3.Session(), s3_endpoint_url=seedlib.s3_endpoint(), default_bucket=seedlib.BUCKET,
                        sagemaker_config=seedlib.TELEMETRY_OFF)


def main():
    sess = local_session()
    bucket = sess.default_bucket()
    prefix = "model-trainer-local"
    work = seedlib.workdir()

    # Data and code in S3.
    subprocess.run([sys.executable, os.path.join(HERE, "..", "custom-framework", "make_data.py"),
                    os.path.join(work, "data")], check=True)
    train_s3 = sess.upload_data(os.path.join(work, "data", "train"), bucket=bucket, key_prefix=f"{prefix}/data/train")
    validation_s3 = sess.upload_data(os.path.join(work, "data", "validation"), bucket=bucket,
                                     key_prefix=f"{prefix}/data/validation")
    code_s3 = sess.upload_data(os.path.join(HERE, "sdk3"), bucket=bucket, key_prefix=f"{prefix}/code")

    # The folder's name becomes docker-compose's project name: unique, so replays run side by side.
    root = os.path.join(work, f"job-{uuid.uuid4().hex[:8]}")
    os.makedirs(root)
    output_path = f"s3://{bucket}/{prefix}/output"
    model_trainer = ModelTrainer(
        training_image=seedlib.image("custom-framework"), training_mode=Mode.LOCAL_CONTAINER, role=seedlib.ROLE,
        source_code=SourceCode(source_dir=code_s3 + "/", entry_script="train.py"),
        compute=Compute(instance_type="local_cpu", instance_count=1),
        hyperparameters={"epochs": 50, "learning-rate": 0.5}, base_job_name="model-trainer-local",
        output_data_config=OutputDataConfig(s3_output_path=output_path), sagemaker_session=sess,
        local_container_root=root)
    model_trainer.train(input_data_config=[InputData(channel_name="train", data_source=train_s3),
                                           InputData(channel_name="validation", data_source=validation_s3)],
                        wait=True, logs=True)

    local_model = os.path.join(root, "compressed_artifacts", "model.tar.gz")
    model_s3 = sess.upload_data(local_model, bucket=bucket, key_prefix=f"{prefix}/output/model")

    # The same job without SourceCode, as a notebook for AWS's framework images writes it: the
    # image's own `train` fetches the sourcedir.tar.gz named by sagemaker_submit_directory, with
    # the endpoint SDK 3.x hands the container (S3_ENDPOINT_URL, which boto3 alone ignores).
    sourcedir = os.path.join(work, "sourcedir.tar.gz")
    with tarfile.open(sourcedir, "w:gz") as tar:
        tar.add(os.path.join(HERE, "sdk3", "train.py"), arcname="train.py")
    sourcedir_s3 = sess.upload_data(sourcedir, bucket=bucket, key_prefix=f"{prefix}/source")
    root2 = os.path.join(work, f"job-{uuid.uuid4().hex[:8]}")
    os.makedirs(root2)
    ModelTrainer(
        training_image=seedlib.image("custom-framework"), training_mode=Mode.LOCAL_CONTAINER, role=seedlib.ROLE,
        compute=Compute(instance_type="local_cpu", instance_count=1),
        hyperparameters={"sagemaker_program": "train.py", "sagemaker_submit_directory": sourcedir_s3, "epochs": 50,
                         "learning-rate": 0.5},
        base_job_name="model-trainer-sourcedir", output_data_config=OutputDataConfig(s3_output_path=output_path),
        sagemaker_session=sess, local_container_root=root2,
    ).train(input_data_config=[InputData(channel_name="train", data_source=train_s3),
                               InputData(channel_name="validation", data_source=validation_s3)], wait=True, logs=True)
    second_model = os.path.join(root2, "compressed_artifacts", "model.tar.gz")

    seedlib.report(ok=os.path.exists(local_model) and os.path.exists(second_model), model=model_s3,
                   local_model=local_model, code=code_s3, sourcedir=sourcedir_s3, second_model=second_model,
                   inputs=json.loads(json.dumps([train_s3, validation_s3])))


if __name__ == "__main__":
    main()
