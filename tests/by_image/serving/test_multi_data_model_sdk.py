"""Issue #17, tried as a new user would: SDK 2.x's `MultiDataModel` pointed at our image, three
model tarballs added under one S3 prefix (moto's real S3 API), then what SageMaker does for each
InvokeEndpoint(TargetModel=...) replayed over HTTP against the container
(smimages.testing.mme_platform): download, extract, load, unload the least recently used on 507,
invoke with the target model's header."""

import json
import tarfile

import pytest

from smimages.testing.mme_platform import MultiModelPlatform, model_name_for
from smimages.testing.multi_model import MODELS, write_scaling_model
from smimages.testing.sdk import run_sdk

WEIGHTS = {"model1.tar.gz": 2, "model2.tar.gz": 3, "model3.tar.gz": 5}
BUCKET = "sm-images-mme"
PREFIX = f"s3://{BUCKET}/mme/"
ENV = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}  # what the user passes as MultiDataModel(env=...)


def model_tarballs(folder):
    """{target: local tarball}: each model's files (weight, code/inference.py) at the tarball's
    root, as SageMaker's model tarballs hold them."""
    tarballs = {}
    for target, weight in WEIGHTS.items():
        stem = target.removesuffix(".tar.gz")
        write_scaling_model(folder / "src", stem, weight)
        tarballs[target] = folder / target
        with tarfile.open(tarballs[target], "w:gz") as tar:
            for path in sorted((folder / "src" / stem / "model").iterdir()):
                tar.add(path, arcname=path.name)
    return tarballs


def scaled(body):
    return json.loads(body)["out"]


def test_a_multi_data_model_made_with_the_sdk_serves_each_of_its_three_models(one_image, moto, tmp_path):
    moto.bucket(BUCKET)
    models = [arg for target, path in model_tarballs(tmp_path).items() for arg in ("--model", f"{path}={target}")]
    proc, outcome = run_sdk(2, ["--image", one_image, "--s3-endpoint", moto.url, "--prefix", PREFIX,
                                "--env", json.dumps(ENV), *models], timeout_s=300, script="multi_data_model")
    assert outcome and outcome["ok"], f"{outcome}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert outcome["added"] == [PREFIX + target for target in WEIGHTS]
    assert outcome["listed"] == sorted(WEIGHTS)  # list_models(): the SDK listed the prefix in S3
    container = outcome["create_model"]["PrimaryContainer"]
    assert container == outcome["container_def"]
    assert container == {"Image": one_image, "Environment": ENV, "ModelDataUrl": PREFIX, "Mode": "MultiModel"}
    # S3 went to moto; CreateModel was answered in the script; nothing else (no STS, no IAM)
    assert [c for c in outcome["aws_calls"] if not c.startswith("s3.")] == ["sagemaker.CreateModel"]

    with MultiModelPlatform(container, moto.client(), tmp_path / "models") as platform:
        platform.wait_ready(timeout_s=120)
        assert platform.endpoint.list() == (200, {"models": []})
        for target in ["model1.tar.gz", "model2.tar.gz", "model3.tar.gz", "model1.tar.gz"]:
            status, body = platform.invoke_endpoint(target, b"[1, 2.5]")
            assert status == 200, body
            weight = WEIGHTS[target]
            assert scaled(body) == [weight, 2.5 * weight], (target, body)
            assert json.loads(body)["model_dir"] == f"{MODELS}/{model_name_for(target)}/model"

        status, listing = platform.endpoint.list()
        assert status == 200
        assert sorted(m["modelName"] for m in listing["models"]) == sorted(model_name_for(t) for t in WEIGHTS)
        # each model was fetched and loaded once, on its first use; model1's second call reused it
        assert [c for c in platform.calls if c[:2] == ("POST", "/models")] == [("POST", "/models", 200)] * 3

        status, body = platform.invoke_endpoint("model4.tar.gz", b"[1]")  # not under the prefix
        assert status == 400 and b"mme/model4.tar.gz" in body
        assert len(platform.endpoint.list()[1]["models"]) == 3


HOLDING = """\
import json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "weight")) as f:
        return float(f.read()), b"x" * (100 << 20)  # the memory its files say it needs

def transform_fn(model, body, content_type, accept):
    return json.dumps({"out": [x * model[0] for x in json.loads(body)]}), "application/json"
"""


@pytest.mark.parametrize("order, unloaded", [
    (["model1.tar.gz", "model2.tar.gz", "model1.tar.gz", "model3.tar.gz"], "model2.tar.gz"),
    (["model1.tar.gz", "model2.tar.gz", "model3.tar.gz"], "model1.tar.gz"),
])
def test_a_load_answered_507_unloads_the_least_recently_used_model_and_tries_again(one_image, moto, tmp_path,
                                                                                   order, unloaded):
    """Models of 100 MB (files and memory) in a 400 MB container: two fit, the third's load
    answers 507, and the platform unloads the least recently used one and loads it again."""
    moto.bucket(BUCKET)
    for target, weight in WEIGHTS.items():
        stem = target.removesuffix(".tar.gz")
        model = tmp_path / "src" / stem
        write_scaling_model(tmp_path / "src", stem, weight, script=HOLDING)
        with open(model / "model" / "padding.bin", "wb") as f:
            f.write(bytes(100 << 20))
        with tarfile.open(tmp_path / target, "w:gz", compresslevel=1) as tar:
            for path in sorted((model / "model").iterdir()):
                tar.add(path, arcname=path.name)
        moto.client().upload_file(str(tmp_path / target), BUCKET, f"mme/{target}")
    container = {"Image": one_image, "Environment": ENV, "ModelDataUrl": PREFIX, "Mode": "MultiModel"}
    with MultiModelPlatform(container, moto.client(), tmp_path / "models", mem_limit="400m",
                            memswap_limit="400m") as platform:
        platform.wait_ready(timeout_s=120)
        for target in order:
            status, body = platform.invoke_endpoint(target, b"[1]")
            assert (status, scaled(body)) == (200, [WEIGHTS[target]])
        name = model_name_for(unloaded)
        assert ("POST", "/models", 507) in platform.calls
        assert ("DELETE", f"/models/{name}", 200) in platform.calls
        listed = {m["modelName"] for m in platform.endpoint.list()[1]["models"]}
        assert listed == {model_name_for(t) for t in set(order) - {unloaded}}
        assert not (tmp_path / "models" / name).exists()  # its files went with it
