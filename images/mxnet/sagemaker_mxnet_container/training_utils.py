"""What scripts written for AWS's MXNet images import from sagemaker_mxnet_container.training_utils:
which host is the parameter-server scheduler, and saving a Module as the MXNet defaults of our
server (sm_mxnet.serving_defaults) and AWS's load it. The hosts come from the job's environment
(SM_CURRENT_HOST, SM_HOSTS), which `train` sets for the script."""

import json
import os

SYMBOL_PATH = "model-symbol.json"
PARAMS_PATH = "model-0000.params"
SHAPES_PATH = "model-shapes.json"


def scheduler_host(hosts):
    """The host that runs the parameter-server scheduler: the first one."""
    return hosts[0]


def save(model_dir, model, current_host=None, hosts=None):
    """Write the Module's symbol, parameters and input shapes to `model_dir` on the scheduler host
    only, so a job on several hosts saves one model."""
    current_host = current_host or os.environ["SM_CURRENT_HOST"]
    hosts = hosts or json.loads(os.environ["SM_HOSTS"])
    if current_host != scheduler_host(hosts):
        return
    model.symbol.save(os.path.join(model_dir, SYMBOL_PATH))
    model.save_params(os.path.join(model_dir, PARAMS_PATH))
    shapes = [{"name": desc.name, "shape": list(desc.shape)} for desc in model.data_shapes]
    with open(os.path.join(model_dir, SHAPES_PATH), "w") as f:
        json.dump(shapes, f)
