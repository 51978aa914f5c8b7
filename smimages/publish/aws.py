"""The AWS side of a push: the region, the account (STS), ECR repositories and login tokens.
Every call has bounded timeouts and retries; AWS_ENDPOINT_URL (boto3's own setting) points all of
them at another endpoint, such as a test server."""

import base64

import boto3
import botocore.exceptions
from botocore.config import Config

from . import PublishError

CONFIG = Config(connect_timeout=10, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})


class Aws:
    def __init__(self, region):
        session = boto3.session.Session()
        known = session.get_available_regions("ecr") + session.get_available_regions("ecr", "aws-cn") + \
            session.get_available_regions("ecr", "aws-us-gov")
        if region not in known:
            raise PublishError(f"unknown AWS region {region!r}: ECR has no such region (e.g. us-west-2)")
        self.region = region
        self.session = session
        self.ecr = session.client("ecr", region_name=region, config=CONFIG)
        self.sts = session.client("sts", region_name=region, config=CONFIG)

    def call(self, what, fn, **kwargs):
        """One AWS call, its failure turned into a one-line cause."""
        try:
            return fn(**kwargs)
        except botocore.exceptions.NoCredentialsError:
            raise PublishError("no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                               "AWS_PROFILE, or run where an IAM role is attached") from None
        except botocore.exceptions.EndpointConnectionError as e:
            raise PublishError(f"{what}: cannot reach the AWS endpoint: {e}") from None
        except botocore.exceptions.ClientError as e:
            error = e.response.get("Error", {})
            raise PublishError(f"{what}: {error.get('Code', 'error')}: {error.get('Message', e)}") from None
        except botocore.exceptions.BotoCoreError as e:
            raise PublishError(f"{what}: {e}") from None

    def account(self):
        return self.call("finding the AWS account (STS GetCallerIdentity)", self.sts.get_caller_identity)["Account"]

    def _find_repository(self, name):
        try:
            return self.ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        except self.ecr.exceptions.RepositoryNotFoundException:
            return None

    def ensure_repository(self, name, mutability):
        """Create the ECR repository when missing: scan on push on, tag mutability as asked."""
        if self.call(f"looking up ECR repository {name}", self._find_repository, name=name):
            return False
        self.call(f"creating ECR repository {name}", self.ecr.create_repository, repositoryName=name,
                  imageScanningConfiguration={"scanOnPush": True}, imageTagMutability=mutability)
        return True

    def login(self, account):
        """(username, password, registry host) from an ECR authorization token."""
        data = self.call("getting an ECR login token", self.ecr.get_authorization_token, registryIds=[account])
        auth = data["authorizationData"][0]
        user, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
        host = auth["proxyEndpoint"].split("://", 1)[-1].rstrip("/")
        return user, password, host
