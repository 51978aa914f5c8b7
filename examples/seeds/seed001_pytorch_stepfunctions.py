"""Seed 001: PyTorch MNIST on two hosts, trained and deployed by the Step Functions Data Science SDK.

The notebook's calls, as it writes them: `sess.upload_data('data', ...)`, a `PyTorch` estimator
(`entry_point='mnist.py'`, two instances, `hyperparameters={'epochs': .., 'backend': 'gloo'}`),
then `TrainingPipeline(estimator, role, inputs, s3_bucket)`, `pipeline.create()` and
`pipeline.execute()`. The definition and the execution input are the `stepfunctions` SDK's own:
the workflow is created, and the execution started, on moto's Step Functions API (the server that
serves S3 here), and both are read back from it. moto runs no SageMaker task, so this script
carries out the definition's four Task states in their order, each with exactly the parameters the
definition resolves from the execution input, by SDK 2.x's local SageMaker client (containers on
this machine): `createTrainingJob.sync` (waits for the job, as `.sync` does), `createModel`,
`createEndpointConfig`, `createEndpoint`. Then the endpoint answers held-out digits.
"""

import json
import os
import re
import socket
import subprocess
import time

import boto3
import numpy as np
import seedlib
from sagemaker.deserializers import NumpyDeserializer
from sagemaker.local.local_session import LocalSagemakerClient
from sagemaker.predictor import Predictor
from sagemaker.pytorch import PyTorch
from sagemaker.serializers import NumpySerializer
from stepfunctions.template.pipeline import TrainingPipeline

HERE = os.path.dirname(os.path.abspath(__file__))
CODE = os.path.join(HERE, "seed001")  # the notebook's folder: mnist.py

EPOCHS = 3
TEST_SIZE = 300  # held-out digits
DOCKER = "/usr/bin/docker"
SERVICE = re.compile(r"arn:aws:states:::sagemaker:(\w+)(\.sync)?")


# --- the state machine: its Task states carried out by the local SageMaker client ----------------
PATH_STEP = re.compile(r"""\.([A-Za-z_][\w-]*)|\['([^']*)'\]|\["([^"]*)"\]|\[(\d+)\]""")


def resolve_path(path, data, context):
    """The value at a JSONPath of the forms the definition uses: `$.a.b`, `$$.Execution.Input['x'].y`,
    `['x']`, `[0]` steps. Anything else is refused, never guessed."""
    if path.startswith("$$"):
        value, rest = context, path[2:]
    elif path.startswith("$"):
        value, rest = data, path[1:]
    else:
        raise ValueError(f"not a JSONPath: {path!r}")
    position = 0
    while position < len(rest):
        step = PATH_STEP.match(rest, position)
        if step is None:
            raise ValueError(f"unsupported JSONPath {path!r} at {rest[position:]!r}")
        name, quoted, double_quoted, index = step.groups()
        key = int(index) if index is not None else next(k for k in (name, quoted, double_quoted) if k is not None)
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            raise KeyError(f"{path} does not resolve: no {key!r}") from None
        position = step.end()
    return value


def resolve_parameters(parameters, data, context):
    """A state's Parameters with every `"key.$": path` replaced by `"key": value`, at any depth."""
    if isinstance(parameters, dict):
        resolved = {}
        for key, value in parameters.items():
            if key.endswith(".$"):
                resolved[key[:-2]] = resolve_path(value, data, context)
            else:
                resolved[key] = resolve_parameters(value, data, context)
        return resolved
    if isinstance(parameters, list):
        return [resolve_parameters(item, data, context) for item in parameters]
    return parameters


def snake(api):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", api).lower()  # createTrainingJob -> create_training_job


def run_states(definition, execution_input, sagemaker_client):
    """Carry out the definition from StartAt to End -> [(state name, its action), ...] in order."""
    context = {"Execution": {"Input": execution_input}}
    data, name, ran = execution_input, definition["StartAt"], []
    while True:
        state = definition["States"][name]
        resource = SERVICE.fullmatch(state.get("Resource", ""))
        if state["Type"] != "Task" or resource is None:
            raise ValueError(f"state {name!r} is not a SageMaker task: {state}")
        api, sync = resource.groups()
        action = api + (sync or "")
        params = resolve_parameters(state.get("Parameters", {}), data, context)
        print(f"==> state {len(ran) + 1} {name!r}: {action}({', '.join(sorted(params))})", flush=True)
        started = time.monotonic()
        result = getattr(sagemaker_client, snake(api))(**params) or {}
        if sync:  # the local client's create_training_job returns when the job has ended
            if api != "createTrainingJob":
                raise ValueError(f"no .sync wait written for {api}")
            result = sagemaker_client.describe_training_job(TrainingJobName=params["TrainingJobName"])
            if result["TrainingJobStatus"] != "Completed":
                raise RuntimeError(f"training job {params['TrainingJobName']} ended {result['TrainingJobStatus']}")
        print(f"    {name!r} done in {time.monotonic() - started:.0f} s", flush=True)
        ran.append((name, action))
        data = result  # ResultPath "$": the task's result is the next state's input
        if state.get("End"):
            return ran
        name = state["Next"]


def port_answers(port):
    """Whether something already listens on the local serving port (then local mode's health check
    would take another server's answer for this endpoint's)."""
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def main():
    sess = seedlib.local_session()
    role = seedlib.ROLE
    bucket = sess.default_bucket()
    prefix = "sagemaker/DEMO-pytorch-mnist"
    work = seedlib.workdir()

    # The notebook's data folder, uploaded as the `training` channel.
    data_dir = os.path.join(work, "data")
    images, labels = seedlib.mnist(data_dir, test_size=TEST_SIZE, torchvision=True)  # held out for the endpoint
    inputs = sess.upload_data(path=data_dir, bucket=bucket, key_prefix=prefix)
    print(f"input spec (in this case, just an S3 path): {inputs}", flush=True)

    estimator = PyTorch(entry_point=os.path.join(CODE, "mnist.py"), role=role, instance_count=2, instance_type="local",
                        framework_version="2.13", py_version="py311", image_uri=seedlib.image("pytorch-horovod-cpu"),
                        hyperparameters={"epochs": EPOCHS, "backend": "gloo"}, sagemaker_session=sess)

    # The pipeline, built as on SageMaker: in local mode SDK 2.x hands the model the local
    # source_dir (none here), so CreateModel would name a sourcedir.tar.gz that nothing uploads
    # (the stepfunctions SDK drops the upload the SageMaker SDK leaves to Airflow).
    sfn = boto3.client("stepfunctions", endpoint_url=seedlib.s3_endpoint())
    sess.local_mode = False
    try:
        pipeline = TrainingPipeline(estimator, role, inputs, bucket, client=sfn)
    finally:
        sess.local_mode = True
    # What local mode forces: the serving containers get no S3 endpoint from the SDK, so the model's
    # environment names this machine's S3 for the code the server fetches (SAGEMAKER_SUBMIT_DIRECTORY).
    pipeline.input_template["Create Model"]["PrimaryContainer"]["Environment"]["AWS_ENDPOINT_URL"] = \
        seedlib.s3_endpoint()

    pipeline.create()
    execution = pipeline.execute()
    machine = sfn.describe_state_machine(stateMachineArn=pipeline.workflow.state_machine_arn)
    definition = json.loads(machine["definition"])
    execution_input = json.loads(sfn.describe_execution(executionArn=execution.execution_arn)["input"])
    print("workflow definition (from Step Functions):", json.dumps(definition, indent=1), flush=True)
    print("execution input (from Step Functions):", json.dumps(execution_input, indent=1), flush=True)
    trained_code = json.loads(execution_input["Training"]["HyperParameters"]["sagemaker_submit_directory"])
    served_code = execution_input["Create Model"]["PrimaryContainer"]["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"]
    if served_code != trained_code:
        raise SystemExit(f"CreateModel serves {served_code}, not the code the training runs ({trained_code})")

    client = sess.sagemaker_client
    port = sess.config["local"]["serving_port"]
    if port_answers(port):
        raise SystemExit(f"the serving port {port} is taken: set SEED_SERVING_PORT to a free one")
    assert isinstance(client, LocalSagemakerClient), type(client)
    endpoint_name = execution_input["Deploy"]["EndpointName"]
    try:
        ran = run_states(definition, execution_input, client)
        states = [action for _, action in ran]
        print("states run, in order: " + " -> ".join(f"{name} ({action})" for name, action in ran), flush=True)

        job = client.describe_training_job(TrainingJobName=execution_input["Training"]["TrainingJobName"])
        model_data = job["ModelArtifacts"]["S3ModelArtifacts"]
        model = client.describe_model(ModelName=execution_input["Create Model"]["ModelName"])["PrimaryContainer"]
        if model["ModelDataUrl"] != model_data:
            raise SystemExit(f"CreateModel's ModelDataUrl {model['ModelDataUrl']} is not the job's model {model_data}")
        print(f"model data {model_data}; CreateModel's ModelDataUrl {model['ModelDataUrl']}", flush=True)
        print(f"CreateModel's environment: {json.dumps(model['Environment'])}", flush=True)
        variant = client.describe_endpoint_config(
            EndpointConfigName=execution_input["Deploy"]["EndpointConfigName"])["ProductionVariants"][0]
        serving = serving_containers(LocalSagemakerClient._endpoints[endpoint_name])
        print(f"endpoint {endpoint_name}: {client.describe_endpoint(EndpointName=endpoint_name)['EndpointStatus']}, "
              f"InitialInstanceCount {variant['InitialInstanceCount']}; local mode's serving containers: "
              + "; ".join(f"{host} {state}" for host, (_, state) in serving.items()), flush=True)
        for host, (container, state) in serving.items():
            if state == "running":  # how the server found its code
                logs = docker("logs", container)
                logs = logs.stdout + logs.stderr
                print("\n".join(f"    {host}: {line}" for line in logs.splitlines() if "sourcedir" in line), flush=True)

        # The notebook's test: held-out digits to the endpoint, as .npy.
        predictor = Predictor(endpoint_name, sagemaker_session=sess, serializer=NumpySerializer(),
                              deserializer=NumpyDeserializer())
        answers = np.concatenate([predictor.predict(images[i:i + 100].reshape(-1, 1, 28, 28)).argmax(axis=1)
                                  for i in range(0, len(images), 100)])
        accuracy = float((answers == labels).mean())
        print(f"endpoint answers (first 20): {answers[:20].tolist()}", flush=True)
        print(f"true labels      (first 20): {labels[:20].tolist()}", flush=True)
        print(f"endpoint accuracy on {len(labels)} held-out digits: {accuracy:.3f}", flush=True)
    finally:
        delete_endpoint(client, endpoint_name)
    seedlib.report(ok=accuracy >= 0.9, states=states, accuracy=round(accuracy, 4), model_data=model_data,
                   endpoint_instance_count=variant["InitialInstanceCount"],
                   serving_containers={host: state for host, (_, state) in serving.items()},
                   submit_directory=model["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"])


# --- what local mode does with the endpoint's containers ------------------------------------------
def docker(*args):
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=60)


def serving_containers(endpoint):
    """{host: (container name, its state)} of every host in the endpoint's compose file. SDK 2.x
    publishes each host on the same local port, so with InitialInstanceCount 2 the second cannot
    start ("port is already allocated"): the state says so."""
    import yaml

    with open(os.path.join(endpoint.container.container_root, "docker-compose.yaml")) as f:
        services = yaml.safe_load(f)["services"]
    found = {}
    for host, service in services.items():
        name = service["container_name"]
        inspected = docker("inspect", "--format", "{{.State.Status}}\t{{.State.Error}}", name)
        status, _, error = inspected.stdout.strip().partition("\t")
        found[host] = (name, status + (f" ({error})" if error else "") if inspected.returncode == 0 else "missing")
    return found


def delete_endpoint(client, endpoint_name):
    """The notebook's clean-up, then whatever local mode left: its delete stops a local endpoint by
    ending its docker-compose process, which has already ended when a host failed to start, and it
    fails on the folder of a second host (it makes one for the first only)."""
    endpoint = LocalSagemakerClient._endpoints.get(endpoint_name)
    if endpoint is None or endpoint.container is None:
        return
    names = [name for name, _ in serving_containers(endpoint).values()]
    try:
        client.delete_endpoint(EndpointName=endpoint_name)
    except FileNotFoundError as e:
        print(f"local mode's delete_endpoint failed: {e}", flush=True)
    left = [name for name in names if docker("inspect", "--format", "{{.State.Running}}", name).stdout.strip() == "true"]
    if left:
        print(f"containers local mode left running after delete_endpoint, removed now: {', '.join(left)}", flush=True)
    docker("rm", "-f", *names)


if __name__ == "__main__":
    main()
