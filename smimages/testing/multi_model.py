"""A multi-model endpoint under test, called as SageMaker's platform calls it: models extracted
under /opt/ml/models/<name>/model, loaded with POST /models, invoked with
POST /models/<name>/invoke and the X-Amzn-SageMaker-Target-Model header.

    with MultiModelEndpoint(image, models_folder) as mme:
        mme.wait_ready()
        status, answer = mme.load("m1")
        status, body, headers = mme.invoke("m1", b"[1, 2]")
"""

import json

from smimages.testing.harness import ServingContainer, write_tree

MODELS = "/opt/ml/models"
TARGET_MODEL = "X-Amzn-SageMaker-Target-Model"

# A model that needs no framework: its answer is its weight times each number sent, with what
# the server told it (its folder, its worker's GPU), so a test sees which model answered.
SCALING_SCRIPT = """\
import json, os

def model_fn(model_dir, context):
    with open(os.path.join(model_dir, "weight")) as f:
        return {"weight": float(f.read()), "model_dir": context.system_properties["model_dir"],
                "gpu_id": context.system_properties["gpu_id"]}

def transform_fn(model, body, content_type, accept):
    out = [x * model["weight"] for x in json.loads(body)]
    return json.dumps({"out": out, "model_dir": model["model_dir"], "gpu_id": model["gpu_id"],
                       "pid": os.getpid()}), "application/json"
"""


def write_scaling_model(models_folder, name, weight, script=SCALING_SCRIPT):
    """A model as the platform lays it out: <models folder>/<name>/model/{weight, code/inference.py}."""
    write_tree(models_folder / name / "model", {"weight": str(weight), "code/inference.py": script})
    return f"{MODELS}/{name}/model"


class MultiModelEndpoint(ServingContainer):
    def __init__(self, image, models_folder, env=None, **run_args):
        super().__init__(image, None, env={"SAGEMAKER_MULTI_MODEL": "true", **(env or {})},
                         volumes={str(models_folder): {"bind": MODELS, "mode": "ro"}}, **run_args)

    def call(self, method, path, payload=None):
        """A management call -> (status, decoded JSON answer)."""
        body = None if payload is None else json.dumps(payload).encode()
        status, answer, _ = self.request(method, path, body, {"Content-Type": "application/json"}, timeout_s=300)
        return status, json.loads(answer) if answer.startswith((b"{", b"[")) else answer.decode()

    def load(self, name, url=None):
        return self.call("POST", "/models", {"model_name": name, "url": url or f"{MODELS}/{name}/model"})

    def unload(self, name):
        return self.call("DELETE", f"/models/{name}")

    def describe(self, name):
        return self.call("GET", f"/models/{name}")

    def list(self, query=""):
        return self.call("GET", "/models" + (f"?{query}" if query else ""))

    def invoke(self, name, body, content_type="application/json", headers=None):
        """-> (status, body bytes, headers)."""
        return self.request("POST", f"/models/{name}/invoke", body,
                            {"Content-Type": content_type, TARGET_MODEL: f"{name}.tar.gz", **(headers or {})})

    def memory_bytes(self):
        """What the container holds in memory now, page cache that can be dropped not counted."""
        stats = self.container.stats(stream=False)["memory_stats"]
        inner = stats.get("stats", {})
        return stats["usage"] - inner.get("total_inactive_file", inner.get("inactive_file", 0))
