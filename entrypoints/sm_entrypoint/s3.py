"""S3 for `train` and `serve` alike: one client maker and one bounded download.

The endpoint comes from the environment, never from the image: AWS_ENDPOINT_URL_S3, then
AWS_ENDPOINT_URL (both honoured by boto3 itself; SDK 2.x local mode sets the first), then
S3_ENDPOINT_URL (what SDK 3.x local mode and sagemaker-training use, which boto3 ignores). Every
call has connect and read timeouts and a few retries, and a download has an overall deadline."""

import logging
import os
import threading
from urllib.parse import urlparse

from .settings import seconds

ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_ENDPOINT_URL")
REGION_VARIABLES = ("AWS_DEFAULT_REGION", "AWS_REGION", "SAGEMAKER_REGION")
DEADLINE_VARIABLE = "SM_ENTRYPOINT_DOWNLOAD_TIMEOUT_SECONDS"
DEFAULT_DEADLINE_S = 600
CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60
MAX_ATTEMPTS = 3  # the first try included
CHUNK_BYTES = 1024 * 1024


class S3Error(Exception):
    """A download that failed, said in one line: what, from where, and why."""


def endpoint(env=None):
    """(url, the variable it came from), or (None, None) for AWS's own endpoint."""
    env = os.environ if env is None else env
    for name in ENDPOINT_VARIABLES:
        value = env.get(name, "").strip()
        if value:
            return value, name
    return None, None


def describe_endpoint(env=None):
    url, name = endpoint(env)
    return f"endpoint {url} from {name}" if url else "AWS's default endpoint"


def region(env=None):
    env = os.environ if env is None else env
    return next((env[n].strip() for n in REGION_VARIABLES if env.get(n, "").strip()), None)


def deadline_s(env=None):
    """The overall limit on one download, in seconds."""
    return seconds(DEADLINE_VARIABLE, DEFAULT_DEADLINE_S, env, S3Error)


def client_config():
    from botocore.config import Config

    return Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                  retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"})


def client(env=None):
    """An S3 client with the endpoint the environment names (see ENDPOINT_VARIABLES) and bounded
    timeouts."""
    import boto3

    logging.getLogger("botocore.credentials").setLevel(logging.WARNING)  # not "Found credentials in ..." each time
    url, _ = endpoint(env)
    return boto3.session.Session().client("s3", endpoint_url=url, region_name=region(env), config=client_config())


def split_url(url):
    """s3://bucket/key -> (bucket, key)."""
    parsed = urlparse(url)
    key = parsed.path.lstrip("/")
    if parsed.scheme != "s3" or not parsed.netloc or not key:
        raise S3Error(f"{url!r} is not an s3://bucket/key URL")
    return parsed.netloc, key


def _cause(exc):
    """One line: the service's error code and message where it sent one, else the exception."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error"):
        error = response["Error"]
        code = error.get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        message = error.get("Message") or ""
        if str(code) == "404" and not message:
            message = "Not Found"
        return " ".join(f"{code}: {message}".split())
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def download(url, target, env=None, deadline=None, s3=None):
    """Write the object at `url` to the file `target`; S3Error (one line) if it cannot be done
    within `deadline` seconds (default: SM_ENTRYPOINT_DOWNLOAD_TIMEOUT_SECONDS)."""
    bucket, key = split_url(url)
    limit = deadline_s(env) if deadline is None else deadline
    where = describe_endpoint(env)
    outcome = {}

    def fetch():
        try:
            body = (s3 or client(env)).get_object(Bucket=bucket, Key=key)["Body"]
            with open(target, "wb") as out:
                while chunk := body.read(CHUNK_BYTES):
                    out.write(chunk)
            outcome["done"] = True
        except Exception as e:  # noqa: BLE001 - botocore's errors, a bad endpoint, no credentials: said as they are
            outcome["error"] = e

    # In a thread of its own: botocore's waits (a connection that never answers, its retries) are
    # bounded only call by call, and the deadline is the user's bound on the whole download.
    worker = threading.Thread(target=fetch, daemon=True, name="s3-download")
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        raise S3Error(f"could not download s3://{bucket}/{key} ({where}): it took over {limit:g} s "
                      f"({DEADLINE_VARIABLE}) and was stopped")
    if "error" in outcome:
        raise S3Error(f"could not download s3://{bucket}/{key} ({where}): {_cause(outcome['error'])}") \
            from outcome["error"]
    return target
