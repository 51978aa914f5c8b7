"""The notebook's `data` folder, made offline: MNIST's four files in the layout torchvision's
`datasets.MNIST(root)` reads (`root/MNIST/raw/*-ubyte`), from scikit-learn's handwritten digits
(real handwriting shipped with scikit-learn; the notebook downloads MNIST itself, which cannot be
done here). The 8x8 digits are scaled to 20x20 and centred in 28x28 as MNIST's are; the test split
is held out; train digits are augmented with one-pixel shifts, as the set is small. A copy of
examples/data/mnist_digits.py, so that this seed's folder runs on its own.

    python mnist_data.py OUT_DIR [--test-size 300]     # needs numpy and scikit-learn
    from mnist_data import read_idx                     # numpy only
"""

import argparse
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
    """(n, 8, 8) values 0..16 -> (n, 28, 28) uint8 0..255, the digit in the central 20x20 box."""
    scaled = _resize(images8.astype(np.float64) / 16.0, BOX)
    out = np.zeros((len(images8), SIDE, SIDE), dtype=np.float64)
    pad = (SIDE - BOX) // 2
    out[:, pad:pad + BOX, pad:pad + BOX] = scaled
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def split(test_size, seed=0):
    """((train images, labels), (test images, labels)): uint8 28x28 images, uint8 labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    if not 0 < test_size < len(order):
        raise ValueError(f"test_size must be between 1 and {len(order) - 1}, got {test_size}")
    images, labels = mnist_like(digits.images[order]), digits.target[order].astype(np.uint8)
    train_images, train_labels = images[test_size:], labels[test_size:]
    shifted = [np.roll(train_images, shift, axis=(1, 2)) for shift in SHIFTS]
    return (np.concatenate(shifted), np.tile(train_labels, len(SHIFTS))), (images[:test_size], labels[:test_size])


def write_idx(path, array):
    """MNIST's idx format: magic (0, 0, 0x08 = ubyte, number of dims), big-endian sizes, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def read_idx(path):
    """The inverse of write_idx."""
    with open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path} is not an idx file of unsigned bytes")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def raw_folder(root):
    return os.path.join(root, "MNIST", "raw")


def write_mnist(root, test_size=300):
    """MNIST's train and t10k files under root/MNIST/raw (uncompressed, as torchvision leaves them)."""
    (train_x, train_y), (test_x, test_y) = split(test_size)
    folder = raw_folder(root)
    os.makedirs(folder, exist_ok=True)
    for prefix, x, y in (("train", train_x, train_y), ("t10k", test_x, test_y)):
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte"), x)
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), y)


def held_out(root):
    """The test digits (images (n, 28, 28) uint8, labels (n,)) written under root."""
    folder = raw_folder(root)
    return (read_idx(os.path.join(folder, "t10k-images-idx3-ubyte")),
            read_idx(os.path.join(folder, "t10k-labels-idx1-ubyte")))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--test-size", type=int, default=300)
    args = ap.parse_args()
    write_mnist(args.out_dir, args.test_size)
    images, labels = held_out(args.out_dir)  # for whoever sends the requests, readable with numpy alone
    np.savez(os.path.join(args.out_dir, "held_out.npz"), images=images, labels=labels)
    print(f"wrote MNIST's files under {raw_folder(args.out_dir)} ({args.test_size} held-out test digits)")
