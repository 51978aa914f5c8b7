"""The submitted source (`sagemaker_submit_directory`): a folder used where it is, or a tarball
(path, file:// or s3://) checked member by member before anything is extracted."""

import logging
import os
import subprocess
import tarfile
import tempfile
from urllib.parse import urlparse

from .errors import JobError
from .process import python

log = logging.getLogger("sm_entrypoint")
PIP_TIMEOUT_S = 3600


def _download_s3(url, dest_dir):
    parsed = urlparse(url)
    target = os.path.join(dest_dir, os.path.basename(parsed.path) or "sourcedir.tar.gz")
    log.info("downloading %s", url)
    try:
        import boto3

        boto3.client("s3").download_file(parsed.netloc, parsed.path.lstrip("/"), target)
    except Exception as e:  # noqa: BLE001 - the cause is reported as it is
        raise JobError(f"could not download the submitted source {url}: {type(e).__name__}: {e}") from e
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


def extract(tarball, target):
    try:
        with tarfile.open(tarball, "r:*") as archive:
            check_members(archive, target)
            kwargs = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
            archive.extractall(target, **kwargs)
    except tarfile.TarError as e:
        raise JobError(f"the submitted source {tarball} is not a readable tarball: {e}") from e


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


def stage(uri, base_dir):
    """Return the folder that holds the submitted source, fetching and extracting it if need be."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        uri = parsed.path
    elif parsed.scheme == "s3":
        with tempfile.TemporaryDirectory() as tmp:
            tarball = _download_s3(uri, tmp)
            target = code_dir_for_extraction(base_dir)
            extract(tarball, target)
            return target
    elif parsed.scheme:
        raise JobError(f"sagemaker_submit_directory {uri!r}: only a folder, a .tar.gz path, file:// or s3:// is supported")
    if os.path.isdir(uri):
        return uri  # local mode bind-mounts the user's folder here: run it in place, write nothing
    if not os.path.exists(uri):
        raise JobError(f"sagemaker_submit_directory {uri} does not exist")
    target = code_dir_for_extraction(base_dir)
    log.info("extracting %s into %s", uri, target)
    extract(uri, target)
    return target


def install_requirements(code_dir):
    """Install requirements.txt found beside the program first, as sagemaker-training does."""
    path = os.path.join(code_dir, "requirements.txt")
    if not os.path.isfile(path):
        return
    log.info("installing %s", path)
    try:
        proc = subprocess.run([python(), "-m", "pip", "install", "--no-input", "-r", path], cwd=code_dir,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise JobError(f"installing requirements.txt took over {PIP_TIMEOUT_S} s and was stopped") from None
    output = proc.stdout.decode("utf-8", errors="replace")
    print(output, end="", flush=True)
    if proc.returncode != 0:
        last = next((ln for ln in reversed(output.splitlines()) if ln.strip()), "")
        raise JobError(f"installing requirements.txt failed (pip exit {proc.returncode}): {last}",
                       detail=output[-4000:], exit_code=proc.returncode)
