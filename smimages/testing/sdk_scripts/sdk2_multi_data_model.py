"""A multi-model endpoint's model, made as a new user makes it with the real SageMaker Python SDK
2.x: `MultiDataModel` on our image with a prefix in S3, `add_model()` for each local model
tarball (the SDK uploads it under the prefix), `list_models()` (the SDK lists the prefix), then
the CreateModel request that `deploy()` would send, captured as the SDK sends it.
Run with the SDK 2.x virtual environment's python; prints one JSON line with the outcome.

    python sdk2_multi_data_model.py --image IMG --s3-endpoint URL --prefix s3://BUCKET/mme/
                                    --model FILE.tar.gz=modelN.tar.gz [--model ...] [--env JSON]

No AWS account and no AWS call: S3 is the endpoint given (moto's server in the tests), and every
other call the SDK's clients try fails at once, except CreateModel, which is answered here and
whose request (the container definition: Image, Environment, ModelDataUrl, Mode) is reported.
`aws_calls` lists every call the SDK made, so a test sees that STS or IAM was never asked.
"""

import argparse
import json
import sys
import traceback

import boto3
from botocore.awsrequest import AWSResponse

ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"
REGION = "us-west-2"
# The SDK would report each call to an AWS address that cannot be reached here.
TELEMETRY_OFF = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


class AwsCalls:
    """botocore hooks on the session every SDK client is made from: S3 goes to the endpoint given,
    CreateModel is recorded and answered here, anything else (STS, IAM, ...) is refused."""

    def __init__(self, boto_session):
        self.calls, self.create_model = [], None
        boto_session.events.register("before-parameter-build", self._params)
        boto_session.events.register("before-call", self._call)

    def _params(self, params, model, **_):
        if model.service_model.service_name == "sagemaker" and model.name == "CreateModel":
            self.create_model = json.loads(json.dumps(params, default=str))

    def _call(self, model, **_):
        service = model.service_model.service_name
        self.calls.append(f"{service}.{model.name}")
        if service == "s3":
            return None  # sent, to the S3 endpoint given
        if service == "sagemaker" and model.name == "CreateModel":
            arn = f"arn:aws:sagemaker:{REGION}:111111111111:model/{self.create_model['ModelName']}"
            return AWSResponse("in-process", 200, {}, None), {"ModelArn": arn}
        raise RuntimeError(f"{service}.{model.name}: no AWS call may leave this script")


def session_on(s3_endpoint, calls_out):
    """A plain (not local) sagemaker.Session whose S3 client and resource use `s3_endpoint`."""
    from sagemaker.session import Session

    boto_session = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    calls_out.append(AwsCalls(boto_session))  # before any client is made: each copies the hooks
    session = Session(boto_session=boto_session, sagemaker_config=TELEMETRY_OFF)
    session.s3_client = boto_session.client("s3", region_name=REGION, endpoint_url=s3_endpoint)
    session.s3_resource = boto_session.resource("s3", region_name=REGION, endpoint_url=s3_endpoint)
    return session


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--s3-endpoint", required=True)
    ap.add_argument("--prefix", required=True, help="model_data_prefix, s3://BUCKET/PREFIX/")
    ap.add_argument("--model", action="append", default=[], help="LOCAL.tar.gz=PATH under the prefix")
    ap.add_argument("--name", default="sm-images-multi-data-model")
    ap.add_argument("--env", default="{}", help="the model's environment, as Model(env=...)")
    ap.add_argument("--instance-type", default="ml.m5.xlarge")
    args = ap.parse_args()

    from sagemaker.multidatamodel import MultiDataModel

    hooks = []
    outcome = {"ok": True}
    try:
        session = session_on(args.s3_endpoint, hooks)
        mdm = MultiDataModel(name=args.name, model_data_prefix=args.prefix, image_uri=args.image, role=ROLE,
                             sagemaker_session=session, env=json.loads(args.env))
        outcome["added"] = []
        for spec in args.model:
            source, _, path = spec.partition("=")
            outcome["added"].append(mdm.add_model(model_data_source=source, model_data_path=path or None))
        outcome["listed"] = sorted(mdm.list_models())
        container_def = mdm.prepare_container_def(instance_type=args.instance_type)
        outcome["container_def"] = container_def
        # what deploy() does first with it: CreateModel (answered by the hook, never sent)
        session.create_model(mdm.name, mdm.role, container_def)
        outcome["create_model"] = hooks[0].create_model
    except Exception as e:  # noqa: BLE001 - the test reads the outcome
        traceback.print_exc()
        outcome.update(ok=False, error=f"{type(e).__name__}: {e}")
    outcome["aws_calls"] = hooks[0].calls if hooks else []
    print("SDK_OUTCOME " + json.dumps(outcome, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
