"""The ddp check's data: scikit-learn's digits as MNIST files, or, without scikit-learn, synthetic
digits in the same format. Both return {channel: folder} for "train" and "test"."""

from pathlib import Path


def from_scikit_learn(folder):
    """ImportError without scikit-learn (or numpy)."""
    from smimages.testing.pytorch_mnist import make_mnist

    return make_mnist(folder, train_limit=3000)


def synthetic(folder, per_class_train=300, per_class_test=30):
    """MNIST-format files of ten fixed random blobs, noisy and shifted: learnable, and written by
    the project's own idx writer, for a machine without scikit-learn's digits."""
    import numpy as np

    from smimages.datasets.mnist_digits import write_idx

    rng = np.random.default_rng(0)
    prototypes = np.zeros((10, 28, 28))
    prototypes[:, 6:22, 6:22] = rng.random((10, 16, 16)) > 0.6
    channels = {}
    for channel, prefix, count in (("train", "train", per_class_train), ("test", "t10k", per_class_test)):
        labels = np.repeat(np.arange(10), count)
        images = prototypes[labels]
        images = np.stack([np.roll(img, tuple(rng.integers(-2, 3, 2)), axis=(0, 1)) for img in images])
        flip = rng.random(images.shape) < 0.05
        images = np.where(flip, 1 - images, images)
        order = rng.permutation(len(labels))
        out = Path(folder) / channel
        out.mkdir(parents=True, exist_ok=True)
        write_idx(str(out / f"{prefix}-images-idx3-ubyte.gz"), (images[order] * 255).astype(np.uint8))
        write_idx(str(out / f"{prefix}-labels-idx1-ubyte.gz"), labels[order].astype(np.uint8))
        channels[channel] = out
    return channels
