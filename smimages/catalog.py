"""What images this repository builds: the one place that the build driver, publishing, the tests
and the benchmarks read for the list of images, what each stands on, its tag, its versions and
which of its tests apply.

An image folder is images/<folder>/ with a Dockerfile. It builds one image, `<folder>`, or, when
it holds a `variants` file, one image per line of it, `<folder>-<variant>`:

    # variant  BUILD_ARG=value ...
    cpu        VARIANT=cpu
    gpu        VARIANT=gpu

A variant's lock file is requirements-<variant>.lock when it exists, else requirements.lock.
An image stands on every image of ours that a `ARG <NAME>_IMAGE=sm-images/<image>:<tag>` default
in its Dockerfile names; `BASE_IMAGE` is the one it is built FROM (its parent: its tests apply to
it too). Framework versions are read from the lock and passed to the build as <PACKAGE>_VERSION
arguments, so no Dockerfile types one.

Tests: tests/by_image/<name>/ holds the tests of image <name>, of the variants of folder <name>,
and, as in docker-stacks, of every image built FROM one of those (a parent's tests run for its
children).
"""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests" / "by_image"
DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")  # Debian's client: it speaks to dockerd 20.10
PREFIX = "sm-images"
ROOT_IMAGE = f"{PREFIX}/debian:bookworm"
LABEL_PREFIX = "io.sm-images"  # our own image labels: io.sm-images.<key>
PYTHON_VERSION = "3.11"  # Debian bookworm's, in images/base
# Images that others stand on and that are never published nor tested as products.
BUILD_ONLY = ("base", "builder", "mpi")
# The packages that name an image's framework, most specific first: the first one an image's lock
# pins gives its version in published tags; all that it pins go in its labels.
FRAMEWORK_PACKAGES = ("dgl", "mxnet", "horovod", "torch", "torchvision", "rdkit", "custom-framework-training",
                      "sagemaker-training", "sagemaker-inference")
_OUR_REF = re.compile(rf"{PREFIX}/([\w.-]+):[\w.-]+")


MULTI_MODEL_LABEL = "com.amazonaws.sagemaker.capabilities.multi-models"
BIND_TO_PORT_LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"  # every serving image has both
SERVING_TESTS = "serving"  # tests/by_image/serving: the tests of every image that serves


def tag(name):
    """The local tag of one of our images."""
    return f"{PREFIX}/{name}:latest"


@dataclass(frozen=True)
class Image:
    name: str
    folder: Path
    variant: str = ""
    build_args: dict = field(default_factory=dict)

    @property
    def tag(self):
        return tag(self.name)

    @property
    def dockerfile(self):
        return self.folder / "Dockerfile"

    @property
    def lock(self):
        specific = self.folder / f"requirements-{self.variant}.lock"
        return specific if self.variant and specific.exists() else self.folder / "requirements.lock"

    @property
    def accelerator(self):
        return "gpu" if "gpu" in self.name.split("-") else "cpu"

    @property
    def serves(self):
        """Serves models, multi-model endpoints included: its Dockerfile carries SageMaker's label."""
        return f"LABEL {MULTI_MODEL_LABEL}=true" in self.dockerfile.read_text()

    @property
    def product(self):
        """Published and tested; the build-only images are neither."""
        return self.name not in BUILD_ONLY

    def pins(self):
        """{normalised package name: version} from the lock file (empty when there is none)."""
        if not self.lock.exists():
            return {}
        text = self.lock.read_text()
        return {re.sub(r"[-_.]+", "-", m.group(1)).lower(): m.group(2)
                for m in re.finditer(r"^([A-Za-z0-9][\w.-]*)==([^\s;\\]+)", text, re.M)}

    def frameworks(self):
        """{package: version} of the framework packages this image pins, most specific first."""
        pins = self.pins()
        return {p: pins[p] for p in FRAMEWORK_PACKAGES if p in pins}

    def version(self):
        """The image's version: its main framework package's version."""
        return next(iter(self.frameworks().values()), "0")

    def version_args(self):
        """The framework versions as build arguments: {"TORCH_VERSION": "2.13.0", ...}."""
        return {re.sub(r"\W", "_", p).upper() + "_VERSION": v for p, v in self.frameworks().items()}

    def image_args(self):
        """{ARG name: default} of every `ARG <NAME>_IMAGE=...` in the Dockerfile, after this variant's
        build arguments are applied. BASE_IMAGE is the one the image is built FROM."""
        found = dict(re.findall(r"^ARG (\w+_IMAGE)=(\S+)", self.dockerfile.read_text(), re.M))
        if "BASE_IMAGE" not in found:
            raise ValueError(f"{self.dockerfile} has no `ARG BASE_IMAGE=...` default")
        return {k: self.build_args.get(k, v) for k, v in found.items()}

    def base_ref(self):
        return self.image_args()["BASE_IMAGE"]


def _variants(folder):
    path = folder / "variants"
    if not path.exists():
        return [Image(folder.name, folder)]
    images = []
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            args = dict(w.split("=", 1) for w in words[1:])
            images.append(Image(f"{folder.name}-{words[0]}", folder, words[0], args))
    return images


def discover(images_dir=None):
    """{name: Image} for every image the repository builds."""
    images_dir = Path(images_dir or ROOT / "images")
    found = {}
    for folder in sorted(p for p in images_dir.iterdir() if (p / "Dockerfile").is_file()):
        for image in _variants(folder.resolve() if folder.is_symlink() else folder):
            found[image.name] = image
    return found


def _ours(ref, images):
    m = _OUR_REF.fullmatch(ref)
    return images.get(m.group(1)) if m else None


def parent_of(image, images):
    """The image of ours this one is built FROM, or None when it stands on the root."""
    return _ours(image.base_ref(), images)


def needs(image, images):
    """Every image of ours this one's build uses (its parent first): they are built before it."""
    found = (_ours(ref, images) for ref in image.image_args().values())
    return list({i.name: i for i in found if i}.values())


def lineage(image, images):
    """The image, its parent, its parent's parent, ... (the images whose tests apply to it)."""
    chain = [image]
    while (parent := parent_of(chain[-1], images)) is not None:
        chain.append(parent)
    return chain


def products(images=None):
    """The names of the images that are published and tested, in catalog order."""
    return [n for n, i in (images or discover()).items() if i.product]


def test_folder_applies(folder, image, images):
    """Whether tests/by_image/<folder> holds tests of `image`: the folder names the image, its
    variants' folder, or one of those of an image it is built FROM; `serving` holds those of every
    image that serves."""
    if folder == SERVING_TESTS:
        return image.serves
    return any(folder in (i.name, i.folder.name) for i in lineage(image, images))


def test_dirs(names, images=None):
    """The tests/by_image folders whose tests apply to any of `names`."""
    images = images or discover()
    return [d for d in sorted(TESTS.iterdir()) if d.is_dir() and any(d.glob("test_*.py"))
            and any(test_folder_applies(d.name, images[n], images) for n in names)]


def images_for(folder, names, images=None):
    """Those of `names` that the tests in tests/by_image/<folder> apply to."""
    images = images or discover()
    return [n for n in names if n in images and test_folder_applies(folder, images[n], images)]


def main(argv):
    """For the Makefile: no argument lists the product images; `--test-dirs NAME...` lists the
    test folders that apply to those images."""
    if argv[:1] == ["--test-dirs"]:
        print(" ".join(str(d.relative_to(ROOT)) for d in test_dirs(argv[1:])))
    else:
        print(" ".join(products()))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
