"""Example user script for the custom-framework image.

Prints the configuration the framework module and the toolkit injected, then runs a short loop
over the `train` and `validation` channels: a linear model y = w.x + b fitted by gradient descent
on CSV rows (features..., label), reporting the validation loss each epoch, and saves the model
and its metrics to SM_MODEL_DIR.
"""

import argparse
import glob
import json
import os
import time

import numpy as np


def load(channel):
    files = sorted(glob.glob(os.path.join(channel, "**", "*.csv"), recursive=True))
    if not files:
        raise SystemExit(f"no .csv files in {channel}")
    data = np.concatenate([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return data[:, :-1], data[:, -1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    args, unknown = parser.parse_known_args()

    print("framework configuration:", os.environ.get("CUSTOM_FRAMEWORK_CONFIG"))
    for key in ("SM_HOSTS", "SM_CURRENT_HOST", "SM_CHANNELS", "SM_NUM_CPUS", "SM_NUM_GPUS", "SM_HPS"):
        print(f"{key}={os.environ.get(key)}")
    print("arguments:", vars(args), "unrecognised:", unknown)

    x_train, y_train = load(args.train)
    x_val, y_val = load(args.validation)
    w, b = np.zeros(x_train.shape[1]), 0.0
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        err = x_train @ w + b - y_train
        w -= args.learning_rate * (x_train.T @ err) / len(y_train)
        b -= args.learning_rate * err.mean()
        val_loss = float(np.mean((x_val @ w + b - y_val) ** 2))
        print(f"epoch {epoch}/{args.epochs}: train_loss={float(np.mean(err ** 2)):.4f} validation_loss={val_loss:.4f}")

    os.makedirs(args.model_dir, exist_ok=True)
    with open(os.path.join(args.model_dir, "model.json"), "w") as f:
        json.dump({"weights": w.tolist(), "bias": b}, f)
    with open(os.path.join(args.model_dir, "metrics.json"), "w") as f:
        json.dump({"epochs": args.epochs, "validation_loss": val_loss,
                   "seconds_per_epoch": (time.perf_counter() - started) / args.epochs}, f)
    print("saved model.json and metrics.json to", args.model_dir)


if __name__ == "__main__":
    main()
