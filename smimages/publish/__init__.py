"""Publishing images to ECR: AWS calls (aws), tag scheme (tags), registry login and push (registry),
software bills of materials (sbom). smimages.push and smimages.sbom are the commands."""


class PublishError(Exception):
    """A one-line cause; the commands print it and exit non-zero."""
