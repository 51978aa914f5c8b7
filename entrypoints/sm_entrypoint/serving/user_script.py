"""Finding and importing the user's inference script: SAGEMAKER_PROGRAM (default inference.py)
in SAGEMAKER_SUBMIT_DIRECTORY when that is a local folder, else in <model dir>/code."""

import importlib.util
import logging
import os
import sys

from .errors import ConfigError

log = logging.getLogger("sm_entrypoint")
DEFAULT_PROGRAM = "inference.py"


def script_path(settings):
    """The script's path, or None when there is none (the image's defaults may then do)."""
    folder = settings.submit_dir or os.path.join(settings.model_dir, "code")
    if settings.submit_dir and not os.path.isdir(folder):
        raise ConfigError(f"SAGEMAKER_SUBMIT_DIRECTORY={settings.submit_dir} is not a folder in this container")
    path = os.path.join(folder, settings.program)
    if os.path.isfile(path):
        return path
    if settings.submit_dir or settings.program != DEFAULT_PROGRAM:  # named, so meant to exist
        raise ConfigError(f"the inference script {path} does not exist")
    return None


def load(path):
    """Import the script as a module named after its file; its folder goes first on sys.path so
    it can import its neighbours. A failing import is the user's error, said in one line."""
    folder, name = os.path.split(path)
    module_name = os.path.splitext(name)[0]
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        log.exception("importing %s failed", path)
        raise ConfigError(f"importing {path} failed: {type(e).__name__}: {e}") from e
    log.info("loaded the inference script %s", path)
    return module


def load_defaults(module_name):
    """The image's framework defaults (model_fn, predict_fn, ...), or None."""
    if not module_name:
        return None
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"SAGEMAKER_DEFAULT_HANDLERS={module_name} cannot be imported: {e}") from e
