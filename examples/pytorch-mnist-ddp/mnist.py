"""The MNIST CNN with torch.distributed (DistributedDataParallel), as a SageMaker script: data
from the `train` and `test` channels in MNIST's own file format, the model to SM_MODEL_DIR.

The process group forms from MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK (`env://`): the image
sets them on every host for a plain job, and torchrun sets them for distribution=
{"torch_distributed": {"enabled": True}}. Without them it runs as a single process.
Hyperparameters: epochs, lr, batch-size, backend (gloo on CPU, nccl on GPU; default: nccl when a
GPU is there, else gloo).
"""

import argparse
import datetime
import gc
import glob
import gzip
import hashlib
import json
import os
import struct

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
import torch.utils.data.distributed
from torch.nn.parallel import DistributedDataParallel
from torchvision import transforms

NORMALIZE = transforms.Normalize((0.1307,), (0.3081,))  # MNIST's mean and deviation


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        return F.log_softmax(self.fc2(x), dim=1)


def read_idx(folder, kind):
    """MNIST's idx ubyte files (gzipped or not): kind 'images' -> (n, 28, 28), 'labels' -> (n,)."""
    found = sorted(glob.glob(os.path.join(folder, f"*{kind}-idx[13]-ubyte*")))
    if not found:
        raise SystemExit(f"no MNIST {kind} file (*{kind}-idx?-ubyte[.gz]) in {folder}")
    with (gzip.open if found[0].endswith(".gz") else open)(found[0], "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols)
    return np.frombuffer(data, np.uint8, offset=8)


def dataset(folder):
    images = torch.from_numpy(read_idx(folder, "images").copy()).float().div(255).unsqueeze(1)
    labels = torch.from_numpy(read_idx(folder, "labels").astype(np.int64))
    return torch.utils.data.TensorDataset(NORMALIZE(images), labels)


def weights_digest(model):
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def test(model, loader, device):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            loss += F.nll_loss(output, target, reduction="sum").item()
            correct += output.argmax(dim=1).eq(target).sum().item()
    n = len(loader.dataset)
    print(f"Test set: Average loss: {loss / n:.4f}, Accuracy: {correct}/{n} ({100.0 * correct / n:.0f}%)")
    print(f"test_accuracy={correct / n:.4f}", flush=True)
    return correct / n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--test-batch-size", type=int, default=1000)
    p.add_argument("--momentum", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--backend", default=None, help="gloo or nccl (default: nccl with a GPU, else gloo)")
    p.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "model"))
    p.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "data/train"))
    p.add_argument("--test", default=os.environ.get("SM_CHANNEL_TEST", "data/test"))
    args = p.parse_args()
    if args.lr <= 0:
        raise SystemExit(f"lr must be positive, got {args.lr}")

    use_cuda = torch.cuda.is_available()
    backend = args.backend or ("nccl" if use_cuda else "gloo")
    if backend == "nccl" and not use_cuda:
        raise SystemExit("backend nccl needs a GPU, and none is visible: use --backend gloo")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    distributed = world_size > 1
    if distributed:
        # env://: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK; a bounded wait for every collective.
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=10))
    rank = dist.get_rank() if distributed else 0
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    torch.manual_seed(args.seed)

    train_set = dataset(args.train)
    sampler = torch.utils.data.distributed.DistributedSampler(train_set, num_replicas=world_size, rank=rank)
    loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, sampler=sampler)

    model = Net().to(device)
    if distributed:  # DDP broadcasts rank 0's parameters at construction and all-reduces gradients
        model = DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None)
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    if rank == 0:
        print(f"torch.distributed: world size {world_size}, backend {backend if distributed else '(none)'}, "
              f"device {device}", flush=True)

    for epoch in range(1, args.epochs + 1):
        model.train()
        sampler.set_epoch(epoch)
        for data, target in loader:
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            loss = F.nll_loss(model(data), target)
            loss.backward()
            optimizer.step()
        if rank == 0:
            print(f"epoch {epoch}/{args.epochs}: loss {loss.item():.4f}", flush=True)

    plain = model.module if distributed else model
    print(f"rank {rank}/{world_size} weights sha256 {weights_digest(plain)}", flush=True)
    if rank == 0:
        test_loader = torch.utils.data.DataLoader(dataset(args.test), batch_size=args.test_batch_size)
        accuracy = test(plain, test_loader, device)
        os.makedirs(args.model_dir, exist_ok=True)
        torch.save(plain.state_dict(), os.path.join(args.model_dir, "model.pth"))
        with open(os.path.join(args.model_dir, "metrics.json"), "w") as f:
            json.dump({"test_accuracy": accuracy, "world_size": world_size}, f)
        print(f"saved {os.path.join(args.model_dir, 'model.pth')}", flush=True)
    if distributed:
        # Every rank waits for rank 0's save, then all leave together: rank 0's process hosts the
        # rendezvous store, and a rank still shutting down after it is gone hangs on that store.
        dist.barrier()
        # Free DDP while the group is still registered. Its reducer holds the group; were the reducer
        # the last owner, its destructor would join gloo's worker thread with the GIL held while that
        # thread waits for the GIL to free its finished work: a deadlock, now and then.
        model = loss = None  # the last step's graph can reach DDP too
        gc.collect()
        dist.destroy_process_group()


# --- serving: deployed with entry_point="mnist.py", the image's `serve` calls these ---------------
def model_fn(model_dir):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = Net()
    model.load_state_dict(torch.load(os.path.join(model_dir, "model.pth"), map_location=device))
    return model.to(device).eval()


def predict_fn(data, model):
    """Records of 784 pixels (0-255, row by row; the image's input_fn made them a tensor from
    CSV, JSON or .npy) -> each digit's probability, one row per record."""
    if data.shape[-1] != 28 * 28:
        raise ValueError(f"each record must hold 784 pixels, not {data.shape[-1]}")
    pixels = data.reshape(-1, 1, 28, 28).float().div(255)
    with torch.no_grad():
        return model(NORMALIZE(pixels).to(next(model.parameters()).device)).exp()


if __name__ == "__main__":
    main()
