"""Seed 004: MXNet Module API training from S3 channels, then a batch transform of S3 input.

As the notebook does: MNIST's files uploaded to S3 as `train` and `test` channels, the `MXNet`
estimator with `entry_point='mnist.py'` (a Module API script that also holds its own serving
functions, model_fn and transform_fn), `fit()`, then `transformer()` and
`transform(s3_input, content_type='text/csv', split_type='Line')` over a folder of CSV files in
S3. The output lands in S3, one `<file>.out` per input file, one predicted digit a line; the
replay reads them back and scores them against the held-out labels.
"""

import os

import numpy as np
import seedlib
from sagemaker.mxnet import MXNet

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = 10  # the transform input: held-out digits in this many CSV files
TEST_SIZE = 500


def main():
    # SDK 2.x repacks the model for serving (model.tar.gz plus code/mnist.py) with a boto3 resource
    # that ignores LocalSession's s3_endpoint_url (sagemaker.utils.download_file): boto3's own
    # variable points it, and every other client of this process, at the S3 server too.
    os.environ.setdefault("AWS_ENDPOINT_URL_S3", seedlib.s3_endpoint())
    sess = seedlib.local_session()
    role = seedlib.ROLE
    bucket = sess.default_bucket()
    prefix = "sagemaker/DEMO-mxnet-mnist"
    work = seedlib.workdir()

    # The notebook's data: MNIST's files in S3, train and test channels.
    images, labels = seedlib.mnist(os.path.join(work, "data"), test_size=TEST_SIZE)
    train_data_location = sess.upload_data(os.path.join(work, "data", "train"), bucket=bucket,
                                           key_prefix=f"{prefix}/train")
    test_data_location = sess.upload_data(os.path.join(work, "data", "test"), bucket=bucket,
                                          key_prefix=f"{prefix}/test")

    mnist_estimator = MXNet(entry_point="mnist.py", source_dir=os.path.join(HERE, "seed004"), role=role,
                            output_path=f"s3://{bucket}/{prefix}/output", code_location=f"s3://{bucket}/{prefix}/code",
                            instance_count=1, instance_type="local", framework_version="1.9.0", py_version="py3",
                            image_uri=seedlib.image("mxnet"), hyperparameters={"learning-rate": 0.1, "epochs": 10},
                            sagemaker_session=sess)
    mnist_estimator.fit({"train": train_data_location, "test": test_data_location})

    # The transform input: held-out digits as CSV files (784 pixel values a line) in S3.
    transform_dir = os.path.join(work, "transform")
    os.makedirs(transform_dir, exist_ok=True)
    names = []
    for i, chunk in enumerate(np.array_split(images.reshape(len(images), -1), FILES)):
        names.append(f"digits-{i:02d}.csv")
        with open(os.path.join(transform_dir, names[-1]), "w") as f:
            f.writelines(",".join(map(str, row)) + "\n" for row in chunk)
    transform_data_location = sess.upload_data(transform_dir, bucket=bucket, key_prefix=f"{prefix}/transform")

    # strategy: SDK 2.x local mode takes a missing one from the container's /execution-parameters,
    # which answers AWS's documented "MULTI_RECORD", and then refuses it ("Invalid Batch Strategy"):
    # it knows only the API's spelling. MultiRecord is what SageMaker does when none is given.
    transformer = mnist_estimator.transformer(instance_count=1, instance_type="local", strategy="MultiRecord")
    # logs=False: with logs on, SDK 2.x reads the job's logs from CloudWatch, local mode included.
    transformer.transform(transform_data_location, content_type="text/csv", split_type="Line", logs=False)
    transformer.wait(logs=False)

    # The notebook's last step: read the predictions back from S3. (SDK 2.x local mode writes them
    # one folder deeper than SageMaker does, under <output_path>/<job name>/: found by listing.)
    output = transformer.output_path.rstrip("/")
    s3 = sess.boto_session.client("s3", endpoint_url=seedlib.s3_endpoint())
    out_bucket, _, out_prefix = output.removeprefix("s3://").partition("/")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=out_bucket, Prefix=out_prefix + "/")["Contents"])
    by_name = {k.rsplit("/", 1)[-1]: k for k in keys}
    predictions = []
    for name in names:
        body = s3.get_object(Bucket=out_bucket, Key=by_name[f"{name}.out"])["Body"].read().decode()
        predictions += [int(v) for v in body.split()]
    accuracy = float(np.mean(np.array(predictions) == labels)) if len(predictions) == len(labels) else 0.0
    print(f"{len(predictions)} predictions for {len(labels)} held-out digits, accuracy {accuracy:.4f}", flush=True)

    seedlib.report(ok=len(predictions) == len(labels) and accuracy >= 0.9, model=mnist_estimator.model_data,
                   job=mnist_estimator.latest_training_job.name, transform_output=output,
                   outputs=[f"s3://{out_bucket}/{k}" for k in keys], records=len(predictions), accuracy=accuracy)


if __name__ == "__main__":
    main()
