"""Seed 002: a custom framework container, driven the two ways the notebook drives it.

1. The generic `Estimator` with JSON-encoded hyperparameters, whose `sagemaker_submit_directory`
   is the `sourcedir.tar.gz` the notebook uploads itself, and `train` and `validation` channels
   as S3 inputs with `content_type='text/csv'`.
2. The notebook's own `CustomFramework(Framework)` subclass with `source_dir`: the SDK packs and
   uploads the code.

The script (examples/custom-framework/train.py) prints the configuration the container injected,
fits a linear model and saves it; both models land in S3 as model.tar.gz.
"""

import json
import os
import subprocess
import sys
import tarfile

import seedlib
from sagemaker.estimator import Estimator, Framework
from sagemaker.inputs import TrainingInput

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "custom-framework")


class CustomFramework(Framework):
    """As the notebook defines it: a Framework estimator for an image of one's own."""

    _framework_name = "custom-framework"

    def __init__(self, entry_point, source_dir=None, hyperparameters=None, framework_version="1.0", py_version="py3",
                 **kwargs):
        super().__init__(entry_point, source_dir, hyperparameters, **kwargs)
        self.framework_version, self.py_version = framework_version, py_version

    def create_model(self, **kwargs):
        raise NotImplementedError("the notebook trains only")


def main():
    sess = seedlib.local_session()
    role = seedlib.ROLE
    image = seedlib.image("custom-framework")
    bucket = sess.default_bucket()
    prefix = "custom-framework"
    work = seedlib.workdir()

    # The notebook's data: train and validation CSVs, uploaded to S3.
    subprocess.run([sys.executable, os.path.join(EXAMPLE, "make_data.py"), os.path.join(work, "data")], check=True)
    train_s3 = sess.upload_data(os.path.join(work, "data", "train"), bucket=bucket, key_prefix=f"{prefix}/data/train")
    validation_s3 = sess.upload_data(os.path.join(work, "data", "validation"), bucket=bucket,
                                     key_prefix=f"{prefix}/data/validation")
    inputs = {"train": TrainingInput(train_s3, content_type="text/csv"),
              "validation": TrainingInput(validation_s3, content_type="text/csv")}

    # 1. sourcedir.tar.gz made and uploaded by the notebook; hyperparameters JSON-encoded by hand.
    sourcedir = os.path.join(work, "sourcedir.tar.gz")
    with tarfile.open(sourcedir, "w:gz") as tar:
        tar.add(os.path.join(EXAMPLE, "train.py"), arcname="train.py")
    source_s3 = sess.upload_data(sourcedir, bucket=bucket, key_prefix=f"{prefix}/source")
    hyperparameters = {"sagemaker_program": "train.py", "sagemaker_submit_directory": source_s3,
                       "epochs": 20, "learning-rate": 0.5}
    estimator = Estimator(image_uri=image, role=role, instance_count=1, instance_type="local",
                          hyperparameters={k: json.dumps(v) for k, v in hyperparameters.items()},
                          output_path=f"s3://{bucket}/{prefix}/output", sagemaker_session=sess)
    estimator.fit(inputs)

    # 2. The notebook's Framework subclass: the SDK packs source_dir and uploads it.
    framework = CustomFramework(entry_point="train.py", source_dir=EXAMPLE, image_uri=image, role=role,
                                instance_count=1, instance_type="local", hyperparameters={"epochs": 20},
                                output_path=f"s3://{bucket}/{prefix}/output", sagemaker_session=sess)
    framework.fit(inputs)

    seedlib.report(ok=True, models=[estimator.model_data, framework.model_data],
                   jobs=[estimator.latest_training_job.name, framework.latest_training_job.name])


if __name__ == "__main__":
    main()
