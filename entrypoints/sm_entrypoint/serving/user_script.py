"""Finding, fetching and importing the user's inference script, in the order of AWS's images:
SAGEMAKER_PROGRAM (default inference.py) in <model dir>/code, then at the root of the model folder
(the layout older SDKs and many tutorials produce), then in SAGEMAKER_SUBMIT_DIRECTORY (a folder,
or a tarball as a path, file:// or s3:// URL, fetched into a fresh folder: the model folder may be
read-only). A requirements.txt beside the script is installed before the script is imported."""

import contextlib
import importlib
import importlib.util
import logging
import os
import sys
import tempfile
import traceback
from urllib.parse import urlparse

from .. import source
from ..errors import JobError
from .errors import ConfigError

log = logging.getLogger("sm_entrypoint")
DEFAULT_PROGRAM = "inference.py"
SUBMIT_VARIABLE = "SAGEMAKER_SUBMIT_DIRECTORY"


@contextlib.contextmanager
def _as_config_error():
    """The shared source code's failures (JobError) stop the server like any setting that cannot work."""
    try:
        yield
    except JobError as e:
        raise ConfigError(e.cause) from e


def candidates(settings):
    """The folders searched before SAGEMAKER_SUBMIT_DIRECTORY, in order."""
    return [os.path.join(settings.model_dir, "code"), settings.model_dir]


def submitted_folder(submit_dir):
    """The folder SAGEMAKER_SUBMIT_DIRECTORY names, or the one its tarball is extracted into (a
    fresh one under the temporary folder, never the model folder)."""
    scheme = urlparse(submit_dir).scheme
    if not scheme:
        if os.path.isdir(submit_dir):
            return submit_dir
        if not os.path.isfile(submit_dir):
            raise ConfigError(f"{SUBMIT_VARIABLE}={submit_dir} is not a folder or a tarball in this container")
    with _as_config_error():
        return source.stage(submit_dir, tempfile.mkdtemp(prefix="sm-submitted-code-"), name=SUBMIT_VARIABLE)


def script_path(settings):
    """The script's path, or None when there is none (the image's defaults may then do). An s3://
    (or tarball) SAGEMAKER_SUBMIT_DIRECTORY is fetched only when neither model folder has the
    script, as AWS's toolkits put the model's code/ first."""
    for folder in candidates(settings):
        path = os.path.join(folder, settings.program)
        if os.path.isfile(path):
            if settings.submit_dir and os.path.realpath(folder) != os.path.realpath(settings.submit_dir):
                log.info("using %s: the model's own script comes first, %s=%s is not used",
                         path, SUBMIT_VARIABLE, settings.submit_dir)
            return path
    code, root = (os.path.join(f, settings.program) for f in candidates(settings))
    if settings.submit_dir:
        folder = submitted_folder(settings.submit_dir)
        path = os.path.join(folder, settings.program)
        if os.path.isfile(path):
            return path
        where = f" (extracted into {folder})" if folder != settings.submit_dir else ""
        raise ConfigError(f"the inference script {settings.program} is not in {SUBMIT_VARIABLE}={settings.submit_dir}"
                          f"{where}, nor at {code} or {root}")
    if settings.program_named or settings.program != DEFAULT_PROGRAM:  # named, so meant to exist
        raise ConfigError(f"the inference script {code} does not exist, nor {root} "
                          f"({SUBMIT_VARIABLE} is not set)")
    return None


def install_requirements(path, settings):
    """requirements.txt beside the script (or in <model>/code when there is no script, as AWS's
    serving toolkits install code/requirements.txt), before anything imports the script."""
    folder = os.path.dirname(path) if path else os.path.join(settings.model_dir, "code")
    with _as_config_error():
        source.install_requirements(folder)
    importlib.invalidate_caches()  # what pip just put in site-packages must be importable


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
        error = ConfigError(f"importing {path} failed: {type(e).__name__}: {e}")
        error.detail = traceback.format_exc()  # logged after the cause, which comes first
        raise error from e
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
