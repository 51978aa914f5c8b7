"""The SDK 3.x replay's training script: the S3 endpoint variables the container was given, then
a linear model y = w.x + b fitted by gradient descent on the `train` channel's CSV rows
(features..., label), scored on `validation`, saved to SM_MODEL_DIR as model.json."""

import argparse
import glob
import json
import os

import numpy as np


def load(channel):
    files = sorted(glob.glob(os.path.join(channel, "**", "*.csv"), recursive=True))
    data = np.concatenate([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return data[:, :-1], data[:, -1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--learning-rate", type=float, default=0.5)
    args, _ = parser.parse_known_args()
    for name in ("S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        print(f"S3 endpoint variable {name}={os.environ.get(name, '(unset)')}", flush=True)

    x, y = load(os.environ["SM_CHANNEL_TRAIN"])
    x_val, y_val = load(os.environ["SM_CHANNEL_VALIDATION"])
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(args.epochs):
        err = x @ w + b - y
        w -= args.learning_rate * (x.T @ err) / len(y)
        b -= args.learning_rate * err.mean()
    val_loss = float(np.mean((x_val @ w + b - y_val) ** 2))
    print(f"validation_loss={val_loss:.5f} weights={w.tolist()} bias={b:.4f}", flush=True)
    model_dir = os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "model.json"), "w") as f:
        json.dump({"weights": w.tolist(), "bias": b, "validation_loss": val_loss}, f)


if __name__ == "__main__":
    main()
