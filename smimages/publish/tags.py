"""The tag scheme of published images.

    <registry>/<prefix>/<image>:<version>-py<python>-<cpu|gpu>-<revision>   immutable, one per build
    <registry>/<prefix>/<image>:<version>-py<python>-<cpu|gpu>              moving (or TAG=...)

<version> is the image's main framework version (from its lock), <revision> the git commit
(12 characters; a build from a tree with uncommitted changes adds -dirty and the build time)."""

import datetime

from smimages.catalog import PYTHON_VERSION
from smimages.labels import revision


def ecr_host(account, region):
    suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
    return f"{account}.dkr.ecr.{region}{suffix}"


def build_id():
    rev = revision()
    short = rev.split("-")[0][:12]
    if rev.endswith("-dirty"):
        return f"{short}-dirty{datetime.datetime.now(datetime.timezone.utc):%Y%m%d%H%M%S}"
    return short


def tags_for(image, moving_tag=None, immutable_only=False):
    """[immutable tag, moving tag] for an image (the moving one left out where tags are immutable)."""
    stem = f"{image.version()}-py{PYTHON_VERSION.replace('.', '')}-{image.accelerator}"
    tags = [f"{stem}-{build_id()}"]
    if not immutable_only:
        tags.append(moving_tag or stem)
    return tags
