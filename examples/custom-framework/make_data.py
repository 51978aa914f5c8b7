"""Writes a small train/validation set for the example: y = 2*x0 - 3*x1 + 0.5 + noise."""

import os
import sys

import numpy as np


def write(folder, rows, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(rows, 2))
    y = 2 * x[:, 0] - 3 * x[:, 1] + 0.5 + rng.normal(0, 0.05, rows)
    os.makedirs(folder, exist_ok=True)
    np.savetxt(os.path.join(folder, "data.csv"), np.column_stack([x, y]), delimiter=",", fmt="%.5f")


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "data"
    write(os.path.join(out, "train"), int(sys.argv[2]) if len(sys.argv) > 2 else 200, 0)
    write(os.path.join(out, "validation"), 50, 1)
