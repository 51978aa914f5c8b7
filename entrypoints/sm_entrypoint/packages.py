"""pip's environment for a requirements.txt, in `train` and `serve` alike: a warm pool's cache, a
private index, and what may be logged of it.

- SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY (set by SageMaker on a warm pool, kept between jobs):
  pip's cache goes under it (PIP_CACHE_DIR=<it>/pip) unless the user set PIP_CACHE_DIR, so the
  next job on the pool installs the same requirements from the cache.
- PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST: pip reads them itself from the environment
  the job or model was given; they are only named (redacted) in the log and in a failure's cause.
- CA_REPOSITORY_ARN (arn:aws:codeartifact:<region>:<account>:repository/<domain>/<repository>):
  a CodeArtifact token and the repository's pypi endpoint are fetched with boto3 and become pip's
  index (https://aws:<token>@<endpoint>simple/), in pip's environment only, as AWS's images do.

No password or token is ever logged or written: every URL's user info is replaced with ***."""

import logging
import os
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from .errors import JobError

log = logging.getLogger("sm_entrypoint")
WARMPOOL_VARIABLE = "SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY"
CODEARTIFACT_VARIABLE = "CA_REPOSITORY_ARN"
ARN_SHAPE = "arn:aws:codeartifact:<region>:<account>:repository/<domain>/<repository>"
# user[:password]@ right after a scheme: over-redacting up to an @ in one word is harmless
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s@]*@")


def redact(text, secrets=()):
    """`text` with every URL's user info, and each of `secrets`, replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
    return _USERINFO.sub(r"\g<scheme>***@", text)


@dataclass(frozen=True)
class Repository:
    region: str
    account: str
    domain: str
    name: str


def parse_repository_arn(arn):
    """CA_REPOSITORY_ARN's parts; JobError naming the expected shape otherwise."""
    parts = arn.strip().split(":", 5)
    resource = parts[5].split("/") if len(parts) == 6 else []
    if (len(parts) != 6 or parts[0] != "arn" or not parts[1].startswith("aws") or parts[2] != "codeartifact"
            or not parts[3] or not parts[4] or len(resource) != 3 or resource[0] != "repository"
            or not all(resource[1:])):
        raise JobError(f"{CODEARTIFACT_VARIABLE}={arn!r} is not a CodeArtifact repository ARN ({ARN_SHAPE})")
    return Repository(parts[3], parts[4], resource[1], resource[2])


def index_url(endpoint, token):
    """The pip index of a CodeArtifact pypi endpoint (https://...amazonaws.com/pypi/<repo>/)."""
    parts = urlsplit(endpoint)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return f"{parts.scheme or 'https'}://aws:{quote(token, safe='')}@{parts.netloc}{path}simple/"


def _codeartifact_client(region):
    import boto3

    from .s3 import client_config  # the same bounded connect/read timeouts and retries as S3's

    logging.getLogger("botocore.credentials").setLevel(logging.WARNING)
    # boto3 itself honours AWS_ENDPOINT_URL_CODEARTIFACT and AWS_ENDPOINT_URL (a VPC endpoint, a test server)
    return boto3.session.Session().client("codeartifact", region_name=region, config=client_config())


def codeartifact_index(arn, client=None, deadline_s=None):
    """(pip's index URL, the token) for the repository `arn` names, within `deadline_s` (the pip
    bound: botocore bounds each call, not its retries together)."""
    repo = parse_repository_arn(arn)
    outcome = {}

    def fetch():
        try:
            ca = client or _codeartifact_client(repo.region)
            outcome["token"] = ca.get_authorization_token(domain=repo.domain, domainOwner=repo.account)["authorizationToken"]
            outcome["endpoint"] = ca.get_repository_endpoint(domain=repo.domain, domainOwner=repo.account,
                                                             repository=repo.name, format="pypi")["repositoryEndpoint"]
        except Exception as e:  # noqa: BLE001 - no credentials, access denied, a bad endpoint: said as they are
            outcome["error"] = e

    worker = threading.Thread(target=fetch, daemon=True, name="codeartifact")
    worker.start()
    worker.join(deadline_s)
    failed = f"{CODEARTIFACT_VARIABLE}={arn}: could not get a CodeArtifact token and pypi endpoint"
    if worker.is_alive():
        raise JobError(f"{failed} within {deadline_s:g} s")
    if "error" in outcome:
        e = outcome["error"]
        said = str(e) if getattr(e, "response", None) else f"{type(e).__name__}: {e}"  # the service's own words
        raise JobError(f"{failed}: " + " ".join(said.split())) from e
    return index_url(outcome["endpoint"], outcome["token"]), outcome["token"]


@dataclass
class PipSetup:
    """The environment pip runs with, and how to speak of it without secrets."""

    env: dict
    secrets: tuple = ()
    indexes: list = field(default_factory=list)  # [(url, where it came from)]

    def redact(self, text):
        return redact(text, self.secrets)

    def where(self):
        """' from index X (PIP_INDEX_URL), extra index Y (PIP_EXTRA_INDEX_URL)', or '' for pip's default."""
        if not self.indexes:
            return ""
        named = [f"{kind} {self.redact(url)} ({origin})" for kind, url, origin in self.indexes]
        return " from " + ", ".join(named)


def _cache(env, child):
    warm = env.get(WARMPOOL_VARIABLE, "").strip()
    if not warm or env.get("PIP_CACHE_DIR", "").strip():
        return
    child["PIP_CACHE_DIR"] = os.path.join(warm, "pip")
    log.info("pip's cache: %s (%s, kept between jobs on the warm pool)", child["PIP_CACHE_DIR"], WARMPOOL_VARIABLE)


def prepare(env=None, codeartifact_client=None, deadline_s=None):
    """pip's environment from the job's or model's (default: this process's); `deadline_s` bounds
    fetching a CodeArtifact token."""
    env = dict(os.environ if env is None else env)
    child, secrets, indexes = dict(env), [], []
    _cache(env, child)
    arn = env.get(CODEARTIFACT_VARIABLE, "").strip()
    if arn:
        url, token = codeartifact_index(arn, codeartifact_client, deadline_s)
        if env.get("PIP_INDEX_URL", "").strip():
            log.warning("%s is set: its CodeArtifact repository replaces PIP_INDEX_URL=%s",
                        CODEARTIFACT_VARIABLE, redact(env["PIP_INDEX_URL"]))
        child["PIP_INDEX_URL"] = url
        secrets.append(token)
        indexes.append(("index", url, CODEARTIFACT_VARIABLE))
    elif env.get("PIP_INDEX_URL", "").strip():
        indexes.append(("index", env["PIP_INDEX_URL"].strip(), "PIP_INDEX_URL"))
    for extra in env.get("PIP_EXTRA_INDEX_URL", "").split():
        indexes.append(("extra index", extra, "PIP_EXTRA_INDEX_URL"))
    return PipSetup(child, tuple(secrets), indexes)
