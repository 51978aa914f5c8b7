"""Seed 000: the DGL Tox21 notebook: a graph convolutional network from the generic `Estimator`.

As the notebook does: the script `main.py` uploaded on its own (`sess.upload_data('main.py', ...)`),
the generic `Estimator(image_uri, role, instance_count=1, instance_type,
hyperparameters={'entrypoint': 'main.py'}, tags=[{'Key': 'ML Task', 'Value': 'DGL'}])`, and
`fit({'training-code': code_location})`: the image runs the script from that channel. The model
(model.pt, metrics.json) lands in S3 as model.tar.gz.

The notebook's container downloads Tox21 itself; nothing can be downloaded here, so the example's
Tox21-format sample (examples/dgl-tox21/data/tox21_sample.csv: real molecules, synthetic labels)
goes to S3 too and is passed as the `train` channel.
"""

import os

import seedlib
from sagemaker.estimator import Estimator

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "dgl-tox21")


def main():
    sess = seedlib.local_session()
    role = seedlib.ROLE
    bucket = sess.default_bucket()
    prefix = "dgl-tox21"
    training_image = seedlib.image("dgl-rdkit-cpu")

    code_location = sess.upload_data(os.path.join(EXAMPLE, "main.py"), bucket=bucket,
                                      key_prefix=f"{prefix}/customcode/tox21")
    data_location = sess.upload_data(os.path.join(EXAMPLE, "data", "tox21_sample.csv"), bucket=bucket,
                                      key_prefix=f"{prefix}/data")

    task_tags = [{"Key": "ML Task", "Value": "DGL"}]
    estimator = Estimator(training_image, role, instance_count=1, instance_type="local",
                          hyperparameters={"entrypoint": "main.py"}, tags=task_tags,
                          output_path=f"s3://{bucket}/{prefix}/output", sagemaker_session=sess)
    estimator.fit({"training-code": code_location, "train": data_location})

    seedlib.report(ok=True, model=estimator.model_data, job=estimator.latest_training_job.name, code=code_location,
                   data=data_location)


if __name__ == "__main__":
    main()
