"""The submitted source (`sagemaker_submit_directory`, and `serve`'s SAGEMAKER_SUBMIT_DIRECTORY): a
folder used where it is, or a tarball (path, file:// or s3://) checked member by member before
anything is extracted; and its requirements.txt, installed with pip's output streamed to the log
(pip's cache and index: sm_entrypoint.packages)."""

import collections
import logging
import os
import signal
import subprocess
import tarfile
import tempfile
import threading
from urllib.parse import urlparse

from . import packages, s3
from .errors import JobError
from .process import python
from .settings import seconds

log = logging.getLogger("sm_entrypoint")
PIP_TIMEOUT_VARIABLE = "SM_ENTRYPOINT_PIP_TIMEOUT_SECONDS"
DEFAULT_PIP_TIMEOUT_S = 3600
PIP_TAIL_LINES = 60


def _download_s3(url, dest_dir):
    """The tarball at `url`, fetched with the shared S3 client (endpoint from the environment,
    bounded timeouts, an overall deadline)."""
    parsed = urlparse(url)
    target = os.path.join(dest_dir, os.path.basename(parsed.path) or "sourcedir.tar.gz")
    log.info("downloading %s (%s)", url, s3.describe_endpoint())
    try:
        s3.download(url, target)
    except s3.S3Error as e:
        raise JobError(f"could not download the submitted source: {e}") from e
    return target


def _inside(root, path):
    root = os.path.realpath(root)
    return os.path.commonpath([root, os.path.realpath(path)]) == root


def check_members(archive, target):
    """Refuse the whole tarball if any member would land, or point, outside `target`."""
    for m in archive.getmembers():
        where = os.path.join(target, m.name)
        if os.path.isabs(m.name) or not _inside(target, where):
            raise JobError(f"submitted tarball refused: member {m.name!r} would be written outside the code folder")
        if m.issym():
            dest = m.linkname if os.path.isabs(m.linkname) else os.path.join(os.path.dirname(where), m.linkname)
            if not _inside(target, dest):
                raise JobError(f"submitted tarball refused: link {m.name!r} points outside the code folder ({m.linkname})")
        elif m.islnk() and (os.path.isabs(m.linkname) or not _inside(target, os.path.join(target, m.linkname))):
            raise JobError(f"submitted tarball refused: hard link {m.name!r} points outside the code folder ({m.linkname})")
        elif m.isdev():
            raise JobError(f"submitted tarball refused: member {m.name!r} is a device file")


def extract(tarball, target, label=None):
    """`label`: what the user named (an s3:// URL fetched into a temporary file), for the messages."""
    label = label or tarball
    try:
        with tarfile.open(tarball, "r:*") as archive:
            try:
                check_members(archive, target)
            except JobError as e:
                raise JobError(f"{e.cause} (in {label})") from None
            kwargs = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
            archive.extractall(target, **kwargs)
    except tarfile.TarError as e:
        raise JobError(f"the submitted source {label} is not a readable tarball: {e}") from e


def code_dir_for_extraction(base_dir):
    """/opt/ml/code when it is empty; otherwise a fresh folder, said out loud (the toolkit silently
    skips the submitted source when /opt/ml/code holds anything, its issues #85 and #222)."""
    default = os.path.join(base_dir, "code")
    if not os.path.isdir(default) or not os.listdir(default):
        os.makedirs(default, exist_ok=True)
        return default
    fresh = tempfile.mkdtemp(prefix="submitted-code-")
    log.warning("%s is not empty: extracting the submitted source into %s instead", default, fresh)
    return fresh


def stage(uri, base_dir, name="sagemaker_submit_directory"):
    """Return the folder that holds the submitted source, fetching and extracting it if need be.
    `name` is what the user set (the hyperparameter, or serve's variable), for the messages."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        uri = parsed.path
    elif parsed.scheme == "s3":
        with tempfile.TemporaryDirectory() as tmp:
            tarball = _download_s3(uri, tmp)
            target = code_dir_for_extraction(base_dir)
            log.info("extracting %s into %s", uri, target)
            extract(tarball, target, label=uri)
            return target
    elif parsed.scheme:
        raise JobError(f"{name} {uri!r}: only a folder, a .tar.gz path, file:// or s3:// is supported")
    if os.path.isdir(uri):
        return uri  # local mode bind-mounts the user's folder here: run it in place, write nothing
    if not os.path.exists(uri):
        raise JobError(f"{name} {uri} does not exist")
    target = code_dir_for_extraction(base_dir)
    log.info("extracting %s into %s", uri, target)
    extract(uri, target)
    return target


def pip_timeout_s(env=None):
    """How long installing a requirements.txt may take (train and serve alike)."""
    return seconds(PIP_TIMEOUT_VARIABLE, DEFAULT_PIP_TIMEOUT_S, env, JobError)


def _stream(pipe, tail, redact):
    """pip's output into the log line by line as it comes, the last lines kept for the cause; any
    URL's user info (an index's password or token) is redacted before it is logged or kept."""
    for raw in iter(pipe.readline, b""):
        line = redact(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        tail.append(line)
        log.info("pip: %s", line)


def install_requirements(code_dir, timeout_s=None):
    """Install requirements.txt found beside the program first, as sagemaker-training (and AWS's
    serving toolkits, for code/requirements.txt) do: pip runs in that folder, so relative paths in
    the file (./wheels/x.whl, --find-links wheels) mean the folder's own; it is stopped, with
    everything it started, after SM_ENTRYPOINT_PIP_TIMEOUT_SECONDS. pip's environment (a warm
    pool's cache, a private index, CodeArtifact's token) comes from sm_entrypoint.packages."""
    path = os.path.join(code_dir, "requirements.txt")
    if not os.path.isfile(path):
        return
    limit = pip_timeout_s() if timeout_s is None else timeout_s
    try:
        setup = packages.prepare(deadline_s=limit)
    except JobError as e:
        raise JobError(f"installing {path} failed: {e.cause}") from e
    log.info("installing %s%s (at most %g s, %s)", path, setup.where(), limit, PIP_TIMEOUT_VARIABLE)
    proc = subprocess.Popen([python(), "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
                             "-r", path], cwd=code_dir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, env=setup.env)
    tail = collections.deque(maxlen=PIP_TAIL_LINES)
    reader = threading.Thread(target=_stream, args=(proc.stdout, tail, setup.redact), daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # pip and whatever it started (a build backend)
        except ProcessLookupError:
            pass
        proc.wait()
        reader.join(timeout=5)
        raise JobError(f"installing {path}{setup.where()} took over {limit:g} s ({PIP_TIMEOUT_VARIABLE}) "
                       "and was stopped", detail="\n".join(tail)) from None
    reader.join(timeout=5)
    if code != 0:
        errors = [ln.strip() for ln in tail if ln.strip().startswith("ERROR:")]
        last = errors[0] if errors else next((ln.strip() for ln in reversed(tail) if ln.strip()), "")
        raise JobError(f"installing {path}{setup.where()} failed (pip exit {code}): {last}",
                       detail="\n".join(tail), exit_code=code)
    log.info("installed %s", path)
