"""What images this repository builds: one place that the build driver, the tests and the
benchmarks all read.

An image folder is images/<folder>/ with a Dockerfile. It builds one image, `<folder>`, or, when
it holds a `variants` file, one image per line of it, `<folder>-<variant>`:

    # variant  BUILD_ARG=value ...
    cpu        VARIANT=cpu
    gpu        VARIANT=gpu TORCH_INDEX=...

A variant's lock file is requirements-<variant>.lock when it exists, else requirements.lock.
Tags are sm-images/<image>:latest. An image's parent is the default of `ARG BASE_IMAGE` in its
Dockerfile when that names another image of ours.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "sm-images"
ROOT_IMAGE = f"{PREFIX}/debian:bookworm"
PYTHON_VERSION = "3.11"  # Debian bookworm's, in images/base
# The packages that name an image's framework, most specific first: the first one an image's lock
# pins gives its version in published tags; all that it pins go in its labels.
FRAMEWORK_PACKAGES = ("dgl", "mxnet", "horovod", "torch", "torchvision", "rdkit", "custom-framework-training",
                      "sagemaker-training", "sagemaker-inference")


@dataclass(frozen=True)
class Image:
    name: str
    folder: Path
    variant: str = ""
    build_args: dict = field(default_factory=dict)

    @property
    def tag(self):
        return f"{PREFIX}/{self.name}:latest"

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

    def base_ref(self):
        """The default of ARG BASE_IMAGE (after this variant's build args are applied)."""
        match = re.search(r"^ARG BASE_IMAGE=(\S+)", self.dockerfile.read_text(), re.M)
        if not match:
            raise ValueError(f"{self.dockerfile} has no `ARG BASE_IMAGE=...` default")
        return self.build_args.get("BASE_IMAGE", match.group(1))


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


def parent_of(image, images):
    """The image of ours this one is built FROM, or None when it stands on the root."""
    m = re.fullmatch(rf"{PREFIX}/([\w.-]+):[\w.-]+", image.base_ref())
    return images.get(m.group(1)) if m else None


def main(argv):
    """Command line for the Makefile: `images.py` lists image names (not base);
    `images.py --test-dirs NAME...` lists the tests/by_image folders of those images."""
    images = discover()
    if argv[:1] == ["--test-dirs"]:
        folders = dict.fromkeys(images[n].folder.name for n in argv[1:] if n in images)
        print(" ".join(str(d.relative_to(ROOT)) for f in folders if (d := ROOT / "tests" / "by_image" / f).is_dir()))
    else:
        print(" ".join(n for n in images if n != "base"))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
