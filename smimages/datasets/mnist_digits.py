"""MNIST-format files from scikit-learn's handwritten digits (real handwriting, shipped with
scikit-learn: nothing is downloaded). The 8x8 images are scaled to 20x20 and centred in 28x28 as
MNIST's are, then written exactly as MNIST's files are (big-endian idx, gzipped):

    train/train-images-idx3-ubyte.gz  train/train-labels-idx1-ubyte.gz
    test/t10k-images-idx3-ubyte.gz    test/t10k-labels-idx1-ubyte.gz

The test split is held out (no digit of it, nor any shifted copy, is in train). Train images are
augmented with one-pixel shifts, as the set is small. Shared by every MNIST example and test:

    .venv/bin/python -m smimages.datasets.mnist_digits OUT_DIR [--test-size 1000] [--train-limit N] [--torchvision]
    from smimages.datasets.mnist_digits import write_mnist, read_idx
"""

import argparse
import gzip
import os
import struct

import numpy as np

SIDE, BOX = 28, 20
SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))  # (rows, cols): each train digit 5 times


def _resize(images, size):
    """Bilinear scaling of (n, h, w) images to (n, size, size), numpy only."""
    n, h, w = images.shape
    ys, xs = np.linspace(0, h - 1, size), np.linspace(0, w - 1, size)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[None, :, None], (xs - x0)[None, None, :]
    top = images[:, y0][:, :, x0] * (1 - wx) + images[:, y0][:, :, x1] * wx
    bottom = images[:, y1][:, :, x0] * (1 - wx) + images[:, y1][:, :, x1] * wx
    return top * (1 - wy) + bottom * wy


def mnist_like(images8):
    """(n, 8, 8) values 0..16 -> (n, 28, 28) uint8 0..255, digit in the central 20x20 box."""
    scaled = _resize(images8.astype(np.float64) / 16.0, BOX)
    out = np.zeros((len(images8), SIDE, SIDE), dtype=np.float64)
    pad = (SIDE - BOX) // 2
    out[:, pad:pad + BOX, pad:pad + BOX] = scaled
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def split(test_size=1000, seed=0):
    """((train images, labels), (test images, labels)) as uint8 28x28 and uint8 labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    if not 0 < test_size < len(order):
        raise ValueError(f"test_size must be between 1 and {len(order) - 1}, got {test_size}")
    images, labels = mnist_like(digits.images[order]), digits.target[order].astype(np.uint8)
    test = images[:test_size], labels[:test_size]
    train_images, train_labels = images[test_size:], labels[test_size:]
    shifted = [np.roll(train_images, shift, axis=(1, 2)) for shift in SHIFTS]
    return (np.concatenate(shifted), np.tile(train_labels, len(SHIFTS))), test


def write_idx(path, array):
    """MNIST's idx format: magic (0, 0, 0x08 = ubyte, number of dims), big-endian sizes, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if not path.endswith(".gz"):  # as torchvision leaves MNIST's files once it has unpacked them
        with open(path, "wb") as f:
            f.write(data)
        return
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:  # same bytes every run
        f.write(data)


def read_idx(path):
    """The inverse of write_idx (gzipped or plain), for tests and examples."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path} is not an idx file of unsigned bytes")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def write_mnist(out_dir, test_size=1000, seed=0, train_limit=None, torchvision=False):
    """Write the train and test channels under out_dir; returns the test (images, labels).
    train_limit keeps only the first N training images (small jobs for tests). torchvision: all four
    files unpacked in out_dir/MNIST/raw, where `torchvision.datasets.MNIST(out_dir)` reads them."""
    (train_x, train_y), (test_x, test_y) = split(test_size, seed)
    train_x, train_y = train_x[:train_limit], train_y[:train_limit]
    for channel, prefix, x, y in (("train", "train", train_x, train_y), ("test", "t10k", test_x, test_y)):
        folder = os.path.join(out_dir, *(("MNIST", "raw") if torchvision else (channel,)))
        suffix = "" if torchvision else ".gz"
        os.makedirs(folder, exist_ok=True)
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte{suffix}"), x)
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{suffix}"), y)
    return test_x, test_y


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--test-size", type=int, default=1000)
    ap.add_argument("--train-limit", type=int, default=None, help="keep only the first N training images")
    ap.add_argument("--torchvision", action="store_true", help="MNIST/raw/, unpacked, as torchvision reads it")
    args = ap.parse_args()
    test_x, test_y = write_mnist(args.out_dir, args.test_size, train_limit=args.train_limit,
                                 torchvision=args.torchvision)
    # The held-out set for whoever sent the requests, readable with numpy alone.
    np.savez(os.path.join(args.out_dir, "held_out.npz"), images=test_x, labels=test_y)
    print(f"wrote MNIST-format train/ and test/ under {args.out_dir} ({len(test_x)} held-out test digits)")
