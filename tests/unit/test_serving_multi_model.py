"""A multi-model endpoint's management calls, routed and answered without a container: what is
plain Python (routing, pagination, names, 409/404/400/507 before anything is forked)."""

import dataclasses

import pytest
from sm_entrypoint.serving import memory, model_api
from sm_entrypoint.serving.errors import BadRequest, Conflict, InsufficientStorage, MethodNotAllowed, NotFound
from sm_entrypoint.serving.multi_model import PAGE, Model, Models
from sm_entrypoint.serving.settings import ServingSettings


@pytest.fixture
def models(tmp_path):
    settings = ServingSettings.from_env({"SAGEMAKER_MULTI_MODEL": "true", "SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
    found = Models(settings, str(tmp_path / "run"))
    for name in ["e", "a", "c", "b", "d"]:
        found.loaded[name] = Model(name, f"/opt/ml/models/{name}/model", pid=0, folder=str(tmp_path / name))
    return found


def call(models, method, target, body=b""):
    return model_api.route(models, models.settings, method, target, body)


def test_models_are_listed_in_name_order_a_page_at_a_time(models):
    status, page = call(models, "GET", "/models?limit=2")
    assert status == 200 and [m["modelName"] for m in page["models"]] == ["a", "b"]
    assert page["nextPageToken"] == "2"
    page = call(models, "GET", "/models?limit=2&next_page_token=4")[1]
    assert page == {"models": [{"modelName": "e", "modelUrl": "/opt/ml/models/e/model"}]}
    assert "nextPageToken" not in call(models, "GET", "/models")[1]  # one page holds all five
    with pytest.raises(BadRequest, match="whole numbers"):
        call(models, "GET", "/models?next_page_token=abc")
    with pytest.raises(BadRequest, match="at least"):
        call(models, "GET", "/models?limit=0")


def test_a_page_holds_at_most_the_default_size(models):
    for i in range(PAGE + 5):
        models.loaded[f"m{i:04}"] = Model(f"m{i:04}", "/x", 0, "/x")
    page = call(models, "GET", f"/models?limit={PAGE * 10}")[1]
    assert len(page["models"]) == PAGE and page["nextPageToken"] == str(PAGE)


def test_describe_and_the_404s_and_405s(models):
    assert call(models, "GET", "/models/c") == (200, {"modelName": "c", "modelUrl": "/opt/ml/models/c/model"})
    for method, target in [("GET", "/models/zz"), ("DELETE", "/models/zz"), ("POST", "/models/zz/invoke")]:
        with pytest.raises(NotFound, match="Model not found: zz"):
            call(models, method, target)
    with pytest.raises(NotFound, match="POST /models/<name>/invoke"):
        call(models, "POST", "/invocations")
    with pytest.raises(MethodNotAllowed):
        call(models, "PUT", "/models")
    with pytest.raises(MethodNotAllowed):
        call(models, "POST", "/models/c")
    assert call(models, "GET", "/execution-parameters")[1]["MaxConcurrentTransforms"] == 2


def test_a_load_is_refused_before_anything_starts(models, tmp_path, monkeypatch):
    with pytest.raises(BadRequest, match="the body is not JSON"):
        call(models, "POST", "/models", b"{model_name")
    with pytest.raises(BadRequest, match="must be a JSON object"):
        call(models, "POST", "/models", b"[1]")
    for bad in ["../up", ".hidden", "a/b", "", None, 7]:
        with pytest.raises(BadRequest, match="model_name"):
            models.load(bad, str(tmp_path))
    with pytest.raises(BadRequest, match="characters; at most"):
        models.load("x" * 120, str(tmp_path))
    with pytest.raises(Conflict, match="Model c is already registered."):
        models.load("c", str(tmp_path))
    with pytest.raises(NotFound, match="Model not found in model store: .*missing"):  # MMS: 404
        models.load("new", str(tmp_path / "missing"))
    with pytest.raises(BadRequest, match="Parameter url is required."):
        models.load("new", None)
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "params").write_bytes(b"x" * (3 << 20))
    monkeypatch.setattr(memory, "available", lambda: 2 << 20)
    with pytest.raises(InsufficientStorage, match=r"model big needs about 3 MB \(its files\) and 2 MB of memory is "
                                                  r"free in this container: not even one copy fits"):
        models.load("big", str(tmp_path / "big"))
    assert "big" not in models.loaded


def test_a_models_workers_are_as_many_as_its_copies_fit_unless_the_user_set_them(models, tmp_path, monkeypatch):
    (tmp_path / "params").write_bytes(b"x" * (3 << 20))
    monkeypatch.setattr(memory, "available", lambda: 7 << 20)
    assert models._workers("m", str(tmp_path)) == 2  # SAGEMAKER_MODEL_SERVER_WORKERS=2 wins
    models.settings = dataclasses.replace(models.settings, workers=4, workers_set=False)
    assert models._workers("m", str(tmp_path)) == 2  # 7 MB hold 2 copies of 3 MB
