"""The classic Horovod MNIST CNN (Horovod's own pytorch_mnist example), as a SageMaker script:
data from the `train` and `test` channels in MNIST's own file format, the model to SM_MODEL_DIR.

Run it through the image with distribution={"mpi": {"enabled": True, "processes_per_host": N}}
(mpirun over the hosts), or by hand: `horovodrun -np 2 python mnist.py --epochs 1`.
Hyperparameters: epochs, lr, batch-size, backend (gloo/nccl: what the GPU path all-reduces with is
Horovod's choice; `backend` is accepted so the same hyperparameters serve both examples).
"""

import argparse
import glob
import gzip
import hashlib
import json
import os
import struct

import horovod.torch as hvd
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
import torch.utils.data.distributed
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
    p.add_argument("--backend", default=None, help="accepted for parity with the DDP example")
    p.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "model"))
    p.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "data/train"))
    p.add_argument("--test", default=os.environ.get("SM_CHANNEL_TEST", "data/test"))
    args = p.parse_args()
    if args.lr <= 0:
        raise SystemExit(f"lr must be positive, got {args.lr}")

    hvd.init()
    torch.manual_seed(args.seed)
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(hvd.local_rank())
        torch.cuda.manual_seed(args.seed)
    device = torch.device("cuda" if use_cuda else "cpu")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // hvd.local_size()))

    train_set = dataset(args.train)
    sampler = torch.utils.data.distributed.DistributedSampler(train_set, num_replicas=hvd.size(), rank=hvd.rank())
    loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, sampler=sampler)

    model = Net().to(device)
    # The learning rate scales with the number of workers, as in Horovod's own example.
    optimizer = optim.SGD(model.parameters(), lr=args.lr * hvd.size(), momentum=args.momentum)
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(optimizer, root_rank=0)
    optimizer = hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters())
    if hvd.rank() == 0:
        print(f"horovod: {hvd.size()} process(es), mpi={hvd.mpi_enabled()} gloo={hvd.gloo_enabled()} "
              f"nccl={hvd.nccl_built()}, device {device}", flush=True)

    for epoch in range(1, args.epochs + 1):
        model.train()
        sampler.set_epoch(epoch)
        for data, target in loader:
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            loss = F.nll_loss(model(data), target)
            loss.backward()
            optimizer.step()
        if hvd.rank() == 0:
            print(f"epoch {epoch}/{args.epochs}: loss {loss.item():.4f}", flush=True)

    print(f"rank {hvd.rank()}/{hvd.size()} weights sha256 {weights_digest(model)}", flush=True)
    if hvd.rank() == 0:
        test_loader = torch.utils.data.DataLoader(dataset(args.test), batch_size=args.test_batch_size)
        accuracy = test(model, test_loader, device)
        os.makedirs(args.model_dir, exist_ok=True)
        torch.save(model.state_dict(), os.path.join(args.model_dir, "model.pth"))
        with open(os.path.join(args.model_dir, "metrics.json"), "w") as f:
            json.dump({"test_accuracy": accuracy, "world_size": hvd.size()}, f)
        print(f"saved {os.path.join(args.model_dir, 'model.pth')}", flush=True)


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
