"""SageMaker's side of a multi-model endpoint, replayed on this machine: what the platform does to
a container for InvokeEndpoint(TargetModel=...), as AWS documents it in "Contract for Custom
Containers to Serve Multiple Models", against our image over HTTP, with S3 from boto3 (moto's
server in the tests).

    with MultiModelPlatform(container_def, s3_client, host_models_folder) as platform:
        platform.wait_ready()
        status, body = platform.invoke_endpoint("model1.tar.gz", b"[1, 2]")

`container_def` is what CreateModel receives (PrimaryContainer: Image, Environment, ModelDataUrl,
Mode), e.g. from the SDK's MultiDataModel.prepare_container_def().
"""

import collections
import hashlib
import posixpath
import shutil
import tarfile
import tempfile
from pathlib import Path

from smimages.testing.multi_model import MODELS, TARGET_MODEL, MultiModelEndpoint

MULTI_MODEL = "MultiModel"


def model_name_for(target_model):
    """The name the platform gives the container for a target model: an opaque id derived from it
    (SageMaker's are hex hashes, never the target's own path), so a test cannot lean on names."""
    return hashlib.sha256(target_model.encode()).hexdigest()[:32]


def split_s3_url(url):
    if not url.startswith("s3://"):
        raise ValueError(f"ModelDataUrl {url!r} is not an s3:// prefix")
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


class MultiModelPlatform:
    """One instance of a multi-model endpoint, as SageMaker runs it:

    - the container is the definition's Image, started with its Environment plus
      SAGEMAKER_MULTI_MODEL=true, which SageMaker sets itself for a model whose Mode is
      MultiModel (the SDK does not put it in Environment); /opt/ml/models is a host folder,
      mounted read-only;
    - on a target model's first use, its tarball (ModelDataUrl + TargetModel) is downloaded from
      S3 and extracted into <host folder>/<name>/model, which the container sees as
      /opt/ml/models/<name>/model, `name` being model_name_for(target); then POST /models
      {"model_name": name, "url": that folder};
    - a load answered 507 (no room) unloads the least recently used model (DELETE /models/<name>,
      its files removed) and is tried again, until it fits or nothing is left to unload;
    - each invocation is POST /models/<name>/invoke with the request's Content-Type and Accept and
      X-Amzn-SageMaker-Target-Model: <target>.

    `calls` records each call made to the container: (method, path, status).
    `endpoint`: the container's client; made from the definition unless given (a test's stand-in).
    """

    def __init__(self, container_def, s3_client, models_folder, endpoint=None, **run_args):
        if container_def.get("Mode") != MULTI_MODEL:
            raise ValueError(f"container Mode is {container_def.get('Mode')!r}, not {MULTI_MODEL!r}")
        self.bucket, self.prefix = split_s3_url(container_def["ModelDataUrl"])
        self.s3 = s3_client
        self.models_folder = Path(models_folder)
        self.models_folder.mkdir(parents=True, exist_ok=True)  # mounted before any model is in it
        self.env = {**container_def.get("Environment", {}), "SAGEMAKER_MULTI_MODEL": "true"}
        self.endpoint = endpoint or MultiModelEndpoint(container_def["Image"], self.models_folder, env=self.env,
                                                       **run_args)
        self.loaded = collections.OrderedDict()  # target -> name, the least recently used first
        self.calls = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if hasattr(self.endpoint, "__exit__"):
            self.endpoint.__exit__(None, None, None)

    def wait_ready(self, timeout_s=120):
        """Until the container answers /ping 200 (SageMaker's health check), bounded."""
        self.endpoint.wait_ready(timeout_s=timeout_s)

    def invoke_endpoint(self, target_model, body, content_type="application/json", accept="application/json"):
        """InvokeEndpoint(TargetModel=target_model) -> (status, body bytes): the container's answer,
        or the platform's own error where the model could not be fetched or loaded."""
        failed = self._ensure_loaded(target_model)
        if failed:
            return failed
        name = self.loaded[target_model]
        self.loaded.move_to_end(target_model)
        status, answer, _ = self.endpoint.invoke(name, body, content_type,
                                                 headers={"Accept": accept, TARGET_MODEL: target_model})
        self.calls.append(("POST", f"/models/{name}/invoke", status))
        return status, answer

    def _ensure_loaded(self, target):
        """None once `target` is loaded, else (status, message bytes) saying why it is not."""
        if target in self.loaded:
            return None
        name = model_name_for(target)
        host_folder = self.models_folder / name
        try:
            self._fetch(target, host_folder / "model")
        except Exception as e:  # noqa: BLE001 - SageMaker answers the caller, as here
            shutil.rmtree(host_folder, ignore_errors=True)
            return 400, (f"Failed to download model data (bucket: {self.bucket}, key: {self._key(target)}): "
                         f"{type(e).__name__}: {e}").encode()
        while True:
            status, answer = self.endpoint.load(name, f"{MODELS}/{name}/model")
            self.calls.append(("POST", "/models", status))
            if status in (200, 409):  # 409: the container has it already
                self.loaded[target] = name
                return None
            if status == 507 and self.loaded:
                self._unload_least_recently_used()
                continue
            shutil.rmtree(host_folder, ignore_errors=True)
            return status, str(answer).encode()

    def _key(self, target):
        return posixpath.join(self.prefix, target) if self.prefix else target

    def _fetch(self, target, folder):
        """ModelDataUrl + target from S3, extracted into `folder` (data members only, none escaping)."""
        shutil.rmtree(folder.parent, ignore_errors=True)
        folder.mkdir(parents=True)
        with tempfile.TemporaryDirectory() as tmp:
            tarball = Path(tmp) / "model.tar.gz"
            self.s3.download_file(self.bucket, self._key(target), str(tarball))
            with tarfile.open(tarball) as tar:
                tar.extractall(folder, filter="data")

    def _unload_least_recently_used(self):
        _target, name = self.loaded.popitem(last=False)
        status, _ = self.endpoint.unload(name)
        self.calls.append(("DELETE", f"/models/{name}", status))
        shutil.rmtree(self.models_folder / name, ignore_errors=True)
