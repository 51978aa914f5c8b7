"""SageMaker's three JSON files under /opt/ml/input/config, checked before the toolkit reads them,
so that a missing or malformed file fails with a cause that names the file."""

import json
import os

from .errors import JobError

FILES = ("hyperparameters.json", "inputdataconfig.json", "resourceconfig.json")


def read(base_dir, name):
    path = os.path.join(base_dir, "input", "config", name)
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise JobError(f"{path} is missing: SageMaker writes it before the container starts") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise JobError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise JobError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def check(base_dir):
    """Read all three files; return them as dicts keyed by file name."""
    files = {name: read(base_dir, name) for name in FILES}
    resources = files["resourceconfig.json"]
    hosts = resources.get("hosts")
    current = resources.get("current_host")
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
        raise JobError("resourceconfig.json: 'hosts' must be a non-empty list of host names")
    if current not in hosts:
        raise JobError(f"resourceconfig.json: current_host {current!r} is not among hosts {hosts}")
    check_channels(base_dir, files["inputdataconfig.json"])
    return files


def check_channels(base_dir, channels):
    """Every File-mode channel the job declares is a folder SageMaker has filled before we start."""
    for name, spec in channels.items():
        mode = spec.get("TrainingInputMode", "File") if isinstance(spec, dict) else "File"
        path = os.path.join(base_dir, "input", "data", name)
        if mode in ("File", "FastFile") and not os.path.isdir(path):
            raise JobError(f"channel {name!r} is declared in inputdataconfig.json but {path} does not exist")
