"""MNIST's own file format (idx ubyte, gzipped) written from scikit-learn's handwritten digits:
real handwriting, 8x8 at 17 grey levels, scaled to a 20x20 box centred in 28x28 as MNIST's are,
0..255. Nothing is downloaded (scikit-learn ships the 1,797 digits).

    python examples/data/mnist_digits.py OUT_DIR          # OUT_DIR/train and OUT_DIR/test
    write_mnist("data/train", "train")                    # from Python
"""

import gzip
import struct
import sys
from pathlib import Path

import numpy as np

FILES = {"train": "train", "test": "t10k"}  # MNIST's file name prefixes
TEST_EVERY = 6  # every 6th digit is held out: about 300 test digits, 1,500 train


def _resize(images, size=20):
    """Bilinear resize of (n, h, w) images to (n, size, size)."""
    h = images.shape[1]
    pos = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, h - 1)
    frac = pos - lo
    rows = images[:, lo, :] * (1 - frac)[None, :, None] + images[:, hi, :] * frac[None, :, None]
    return rows[:, :, lo] * (1 - frac)[None, None, :] + rows[:, :, hi] * frac[None, None, :]


def digits(split):
    """(images uint8 (n, 28, 28), labels uint8 (n,)) of one split."""
    from sklearn.datasets import load_digits

    data = load_digits()
    held_out = np.arange(len(data.target)) % TEST_EVERY == 0
    keep = held_out if split == "test" else ~held_out
    small = data.images[keep] / 16.0
    images = np.zeros((len(small), 28, 28))
    images[:, 4:24, 4:24] = _resize(small)
    return (images * 255).round().clip(0, 255).astype(np.uint8), data.target[keep].astype(np.uint8)


def write_mnist(folder, split, limit=None):
    """Write <prefix>-images-idx3-ubyte.gz and <prefix>-labels-idx1-ubyte.gz into `folder`;
    returns the number of digits written."""
    if split not in FILES:
        raise ValueError(f"split must be one of {sorted(FILES)}, not {split!r}")
    images, labels = digits(split)
    images, labels = images[:limit], labels[:limit]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    prefix = FILES[split]
    with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, len(images), 28, 28) + images.tobytes())
    with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 2049, len(labels)) + labels.tobytes())
    return len(labels)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "data")
    for name in FILES:
        print(f"{write_mnist(out / name, name)} {name} digits in {out / name}")
