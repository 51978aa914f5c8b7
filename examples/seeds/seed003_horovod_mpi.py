"""Seed 003: Horovod over MPI on 2 hosts with the PyTorch estimator, then deploy() and predict().

As the notebook does: MNIST's files uploaded to S3 (`sess.upload_data`) as `train` and `test`
channels, the `PyTorch` estimator with `distribution={'mpi': {'enabled': True,
'processes_per_host': 1}}` and `instance_count=2` (mpirun across the hosts), `fit()`, then
`deploy()` to an endpoint and `predict()` on held-out digits, and `delete_endpoint()`.

The script is Horovod's own PyTorch MNIST example as a SageMaker script
(examples/pytorch-mnist-horovod/mnist.py), with its model_fn and predict_fn for serving; code
travels through S3 (`sourcedir.tar.gz`), for training and for the endpoint.
"""

import os

import numpy as np
import seedlib
from sagemaker.pytorch import PyTorch

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "pytorch-mnist-horovod")


def main():
    # SDK 2.x repacks the model for serving (model.tar.gz plus code/) with a boto3 resource that
    # ignores LocalSession's s3_endpoint_url (sagemaker.utils.download_file): boto3's own variable
    # points it, and every other client of this process, at the S3 server too.
    os.environ.setdefault("AWS_ENDPOINT_URL_S3", seedlib.s3_endpoint())
    sess = seedlib.local_session()
    role = seedlib.ROLE
    bucket = sess.default_bucket()
    prefix = "sagemaker/DEMO-pytorch-horovod-mnist"
    work = seedlib.workdir()

    # The notebook's data, in S3.
    images, labels = seedlib.mnist(os.path.join(work, "data"), test_size=300, train_limit=3000)
    train_input = sess.upload_data(os.path.join(work, "data", "train"), bucket=bucket, key_prefix=f"{prefix}/train")
    test_input = sess.upload_data(os.path.join(work, "data", "test"), bucket=bucket, key_prefix=f"{prefix}/test")

    estimator = PyTorch(entry_point="mnist.py", source_dir=EXAMPLE, role=role, image_uri=seedlib.image("pytorch-horovod-cpu"),
                        framework_version="2.6", py_version="py3", instance_count=2, instance_type="local",
                        hyperparameters={"epochs": 5, "lr": 0.02, "momentum": 0.9, "batch-size": 64, "backend": "gloo"},
                        distribution={"mpi": {"enabled": True, "processes_per_host": 1}},
                        output_path=f"s3://{bucket}/{prefix}/output", code_location=f"s3://{bucket}/{prefix}/code",
                        sagemaker_session=sess)
    estimator.fit({"train": train_input, "test": test_input})

    predictor = estimator.deploy(initial_instance_count=1, instance_type="local")
    try:
        probabilities = np.asarray(predictor.predict(images.reshape(len(images), -1).astype(np.float32)))
    finally:
        predictor.delete_endpoint()
    predicted = probabilities.argmax(axis=1)
    accuracy = float(np.mean(predicted == labels))
    print(f"{len(predicted)} predictions for {len(labels)} held-out digits, accuracy {accuracy:.4f}", flush=True)

    seedlib.report(ok=len(predicted) == len(labels) and accuracy >= 0.9, model=estimator.model_data,
                   job=estimator.latest_training_job.name, endpoint=predictor.endpoint_name,
                   predictions=len(predicted), accuracy=accuracy)


if __name__ == "__main__":
    main()
