"""Multi-model endpoints, called as SageMaker's platform calls them
(sm_entrypoint.serving.multi_model): load, list a page at a time, describe, invoke, unload; 409,
404 and 507 where the contract says; a broken model beside working ones; memory given back. The
label on every serving image; the endpoint itself is the framework-free shared server, so once
(each image's framework defaults on a multi-model endpoint: its own tests)."""

import http.client
import json
import threading

import docker
import pytest

from smimages.catalog import MULTI_MODEL_LABEL
from smimages.testing.harness import write_tree
from smimages.testing.multi_model import TARGET_MODEL, MultiModelEndpoint, write_scaling_model

ONE_WORKER = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}


def scaled(answer):
    return json.loads(answer)["out"]


def test_the_image_says_it_serves_multi_model_endpoints(image):
    labels = docker.from_env().images.get(image).labels
    assert labels.get(MULTI_MODEL_LABEL) == "true"


def test_models_load_list_invoke_and_unload_as_the_platform_calls_them(one_image, tmp_path):
    for i, name in enumerate(["alpha", "beta", "gamma"], start=2):
        write_scaling_model(tmp_path, name, i)
    three_gpus = {**ONE_WORKER, "CUDA_VISIBLE_DEVICES": "0,1,2"}  # placement is read from it, GPU or not
    with MultiModelEndpoint(one_image, tmp_path, env=three_gpus) as mme:
        mme.wait_ready()  # /ping says 200 with no model loaded: the platform loads them later
        assert mme.list() == (200, {"models": []})
        for name in ["alpha", "beta", "gamma"]:
            assert mme.load(name)[0] == 200
        assert mme.load("beta")[0] == 409

        status, page = mme.list("limit=2")
        assert status == 200 and [m["modelName"] for m in page["models"]] == ["alpha", "beta"]
        status, rest = mme.list(f"limit=2&next_page_token={page['nextPageToken']}")
        assert rest == {"models": [{"modelName": "gamma", "modelUrl": "/opt/ml/models/gamma/model"}]}
        assert mme.describe("beta") == (200, {"modelName": "beta", "modelUrl": "/opt/ml/models/beta/model"})

        for gpu, (name, weight) in enumerate([("alpha", 2), ("beta", 3), ("gamma", 4)]):
            status, body, _ = mme.invoke(name, b"[1, 2.5]")
            assert status == 200 and scaled(body) == [weight, 2.5 * weight]
            assert json.loads(body)["model_dir"] == f"/opt/ml/models/{name}/model"
            assert json.loads(body)["gpu_id"] == gpu  # each model's worker on the next GPU

        assert mme.unload("beta") == (200, {"status": 'Model "beta" unregistered'})  # MMS's words
        assert mme.invoke("beta", b"[1]")[0] == 404
        for call in (mme.describe, mme.unload):
            status, answer = call("beta")
            assert status == 404 and answer == {"code": 404, "type": "ModelNotFoundException",
                                                "message": "Model not found: beta"}
        assert [m["modelName"] for m in mme.list()[1]["models"]] == ["alpha", "gamma"]
        assert mme.invoke("gamma", b"[1]")[0] == 200
        assert mme.load("beta")[0] == 200  # loaded again after an unload
        assert scaled(mme.invoke("beta", b"[2]")[1]) == [6]
        assert json.loads(mme.invoke("beta", b"[2]")[1])["gpu_id"] == 0  # the 4th worker: round-robin


def test_bad_management_calls_answer_400_404_or_405_saying_why(one_image, tmp_path):
    write_scaling_model(tmp_path, "alpha", 1)
    with MultiModelEndpoint(one_image, tmp_path, env=ONE_WORKER) as mme:
        mme.wait_ready()
        status, answer = mme.load("../alpha", "/opt/ml/models/alpha/model")
        assert status == 400 and "model_name '../alpha'" in answer["message"]
        status, answer = mme.load("alpha", "/opt/ml/models/missing")
        assert status == 404 and answer["message"] == "Model not found in model store: /opt/ml/models/missing"
        status, answer = mme.call("POST", "/models", None)
        assert status == 400
        assert mme.call("PUT", "/models/alpha")[0] == 405
        assert mme.list("next_page_token=x")[0] == 400
        status, body, _ = mme.request("POST", "/invocations", b"[1]")
        assert status == 404 and b"POST /models/<name>/invoke" in body


@pytest.mark.expect_log_errors("models that fail to load, on purpose")
def test_a_model_that_fails_to_load_says_why_and_the_others_keep_serving(one_image, tmp_path):
    write_scaling_model(tmp_path, "good", 5)
    write_tree(tmp_path / "broken" / "model" / "code",
               {"inference.py": "def model_fn(model_dir):\n    raise OSError('weights.bin is corrupt')\n"})
    write_tree(tmp_path / "typo" / "model" / "code", {"inference.py": "import numpyy\n"})
    with MultiModelEndpoint(one_image, tmp_path, env=ONE_WORKER) as mme:
        mme.wait_ready()
        assert mme.load("good")[0] == 200
        status, answer = mme.load("broken")
        assert status == 500
        assert answer["message"] == "model broken failed to load: model_fn failed: OSError: weights.bin is corrupt"
        status, answer = mme.load("typo")
        assert status == 500 and "ModuleNotFoundError: No module named 'numpyy'" in answer["message"]
        assert [m["modelName"] for m in mme.list()[1]["models"]] == ["good"]
        assert mme.invoke("broken", b"[1]")[0] == 404
        assert scaled(mme.invoke("good", b"[1]")[1]) == [5]


def test_unloading_a_model_gives_its_memory_back(one_image, tmp_path):
    """A model holding 300 MB: the container's memory rises by that much on load and falls back on
    unload, since the model's workers end with it."""
    hog = "import os\n\ndef model_fn(model_dir):\n    return b'x' * (300 << 20)\n\n" \
          "def transform_fn(model, body, content_type, accept):\n    return str(len(model)), 'text/plain'\n"
    write_tree(tmp_path / "hog" / "model" / "code", {"inference.py": hog})
    with MultiModelEndpoint(one_image, tmp_path, env=ONE_WORKER) as mme:
        mme.wait_ready()
        before = mme.memory_bytes()
        assert mme.load("hog")[0] == 200
        assert mme.invoke("hog", b"", "text/plain")[1] == str(300 << 20).encode()
        loaded = mme.memory_bytes()
        assert mme.unload("hog")[0] == 200
        after = mme.memory_bytes()
        print(f"memory: {before >> 20} MiB idle, {loaded >> 20} MiB with the model, {after >> 20} MiB unloaded")
        assert loaded - before > 250 << 20
        assert after - before < 50 << 20


@pytest.mark.expect_log_errors("a worker killed by the OOM killer, on purpose")
def test_a_model_that_cannot_fit_answers_507_and_the_others_keep_serving(one_image, tmp_path):
    write_scaling_model(tmp_path, "small", 7)
    write_tree(tmp_path / "huge" / "model", {"code/inference.py": "def model_fn(d):\n    return 1\n"})
    with open(tmp_path / "huge" / "model" / "weights.bin", "wb") as f:
        f.truncate(4 << 30)  # 4 GB of files (sparse: nothing on disk) in a 1 GB container
    greedy = "def model_fn(model_dir):\n    return b'x' * (2 << 30)\n"
    write_tree(tmp_path / "greedy" / "model" / "code", {"inference.py": greedy})
    with MultiModelEndpoint(one_image, tmp_path, env=ONE_WORKER, mem_limit="1g", memswap_limit="1g") as mme:
        mme.wait_ready()
        assert mme.load("small")[0] == 200
        status, answer = mme.load("huge")
        assert status == 507 and answer["message"].startswith("model huge needs about 4,096 MB")
        status, answer = mme.load("greedy")  # small files, but model_fn takes 2 GB: the OOM killer
        assert status == 507 and answer["message"].startswith("model greedy ")
        assert [m["modelName"] for m in mme.list()[1]["models"]] == ["small"]
        assert scaled(mme.invoke("small", b"[1]")[1]) == [7]


def test_10000_requests_over_32_connections_spread_over_3_models(one_image, tmp_path):
    weights = {"alpha": 2, "beta": 3, "gamma": 5}
    for name, weight in weights.items():
        write_scaling_model(tmp_path, name, weight)
    with MultiModelEndpoint(one_image, tmp_path) as mme:
        mme.wait_ready()
        for name in weights:
            assert mme.load(name)[0] == 200
        wrong, answered = [], []

        def client(k):
            conn = http.client.HTTPConnection("127.0.0.1", mme.port, timeout=60)
            names = list(weights)
            for i in range(10000 // 32 + (k < 10000 % 32)):
                name = names[(k + i) % 3]
                conn.request("POST", f"/models/{name}/invoke", b"[1, %d]" % i,
                             {"Content-Type": "application/json", TARGET_MODEL: f"{name}.tar.gz"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200 or scaled(body) != [weights[name], i * weights[name]]:
                    wrong.append((name, i, resp.status, body[:200]))
                answered.append(name)
            conn.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert not any(t.is_alive() for t in threads)
        assert wrong == []
        assert len(answered) == 10000 and {answered.count(n) for n in weights} <= {3333, 3334}
