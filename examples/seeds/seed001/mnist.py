"""AWS's classic PyTorch MNIST example script, in its shape: argparse with the SageMaker
environment as defaults, torch.distributed over several hosts (`--backend gloo`), the model saved to
SM_MODEL_DIR, and `model_fn`/`predict_fn` for serving in the same file.

The process group forms from the environment our image sets on every host for a plain script
(MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK: `env://`), with DistributedDataParallel averaging the
gradients. Like the original, it never calls destroy_process_group. Data: torchvision's MNIST
files in the `training` channel (`training/MNIST/raw/`), the t10k files held out for the test.
"""

import argparse
import json
import logging
import os
import sys

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
import torch.utils.data
import torch.utils.data.distributed
from torchvision import datasets, transforms

logger = logging.getLogger(__name__)
logger.setLevel(logging.DEBUG)
logger.addHandler(logging.StreamHandler(sys.stdout))

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


def _get_train_data_loader(batch_size, training_dir, is_distributed, **kwargs):
    logger.info("Get train data loader")
    dataset = datasets.MNIST(training_dir, train=True, transform=transforms.Compose([transforms.ToTensor(), NORMALIZE]))
    train_sampler = torch.utils.data.distributed.DistributedSampler(dataset) if is_distributed else None
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=train_sampler is None,
                                       sampler=train_sampler, **kwargs)


def _get_test_data_loader(test_batch_size, training_dir, **kwargs):
    logger.info("Get test data loader")
    dataset = datasets.MNIST(training_dir, train=False, transform=transforms.Compose([transforms.ToTensor(), NORMALIZE]))
    return torch.utils.data.DataLoader(dataset, batch_size=test_batch_size, shuffle=True, **kwargs)


def train(args):
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    is_distributed = world_size > 1 and args.backend is not None
    logger.debug("Distributed training - %s", is_distributed)
    use_cuda = args.num_gpus > 0
    logger.debug("Number of gpus available - %d", args.num_gpus)
    kwargs = {"num_workers": 1, "pin_memory": True} if use_cuda else {}
    device = torch.device("cuda" if use_cuda else "cpu")

    if is_distributed:
        # env://: MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK, as the image sets them on each host
        dist.init_process_group(backend=args.backend)
        logger.info("Initialized the distributed environment: '%s' backend on %d nodes. Current host rank is %d. "
                    "Number of gpus: %d", args.backend, dist.get_world_size(), dist.get_rank(), args.num_gpus)
    rank = dist.get_rank() if is_distributed else 0

    torch.manual_seed(args.seed)
    if use_cuda:
        torch.cuda.manual_seed(args.seed)

    train_loader = _get_train_data_loader(args.batch_size, args.data_dir, is_distributed, **kwargs)
    test_loader = _get_test_data_loader(args.test_batch_size, args.data_dir, **kwargs)
    logger.debug("Processes %d/%d (%.0f%%) of train data", len(train_loader.sampler), len(train_loader.dataset),
                 100.0 * len(train_loader.sampler) / len(train_loader.dataset))

    model = Net().to(device)
    if is_distributed:
        model = torch.nn.parallel.DistributedDataParallel(model)
    else:
        model = torch.nn.DataParallel(model)
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)

    for epoch in range(1, args.epochs + 1):
        if is_distributed:
            train_loader.sampler.set_epoch(epoch)
        model.train()
        for batch_idx, (data, target) in enumerate(train_loader, 1):
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            loss = F.nll_loss(model(data), target)
            loss.backward()
            optimizer.step()
            if batch_idx % args.log_interval == 0:
                logger.info("Train Epoch: %d [%d/%d (%.0f%%)] Loss: %.6f", epoch, batch_idx * len(data),
                            len(train_loader.sampler), 100.0 * batch_idx / len(train_loader), loss.item())
        test(model, test_loader, device)
    if rank == 0:  # every host holds the same weights; in local mode they share one model folder
        save_model(model, args.model_dir)


def test(model, test_loader, device):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            correct += output.argmax(dim=1).eq(target).sum().item()  # the index of the max log-probability
    test_loss /= len(test_loader.dataset)
    logger.info("Test set: Average loss: %.4f, Accuracy: %d/%d (%.0f%%)", test_loss, correct,
                len(test_loader.dataset), 100.0 * correct / len(test_loader.dataset))


def save_model(model, model_dir):
    logger.info("Saving the model.")
    path = os.path.join(model_dir, "model.pth")
    # recommended way from http://pytorch.org/docs/master/notes/serialization.html
    torch.save(model.module.cpu().state_dict(), path)


# --- serving: the endpoint runs this same file (SAGEMAKER_PROGRAM=mnist.py) -----------------------
def model_fn(model_dir):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = Net()
    with open(os.path.join(model_dir, "model.pth"), "rb") as f:
        model.load_state_dict(torch.load(f, map_location=device))
    return model.to(device).eval()


def predict_fn(input_data, model):
    """Images as the notebook sends them: (n, 1, 28, 28) or (n, 784) pixels, 0-255 -> the log
    probabilities of each digit, one row per image."""
    device = next(model.parameters()).device
    pixels = input_data.float().reshape(-1, 1, 28, 28).div(255)
    with torch.no_grad():
        return model(NORMALIZE(pixels).to(device))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=64, metavar="N",
                        help="input batch size for training (default: 64)")
    parser.add_argument("--test-batch-size", type=int, default=1000, metavar="N",
                        help="input batch size for testing (default: 1000)")
    parser.add_argument("--epochs", type=int, default=10, metavar="N", help="number of epochs to train (default: 10)")
    parser.add_argument("--lr", type=float, default=0.02, metavar="LR", help="learning rate (default: 0.02)")
    parser.add_argument("--momentum", type=float, default=0.9, metavar="M", help="SGD momentum (default: 0.9)")
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default: 1)")
    parser.add_argument("--log-interval", type=int, default=50, metavar="N",
                        help="how many batches to wait before logging training status")
    parser.add_argument("--backend", type=str, default=None,
                        help="backend for distributed training (tcp, gloo on cpu and gloo, nccl on gpu)")

    # Container environment
    parser.add_argument("--hosts", type=list, default=json.loads(os.environ["SM_HOSTS"]))
    parser.add_argument("--current-host", type=str, default=os.environ["SM_CURRENT_HOST"])
    parser.add_argument("--model-dir", type=str, default=os.environ["SM_MODEL_DIR"])
    parser.add_argument("--data-dir", type=str, default=os.environ["SM_CHANNEL_TRAINING"])
    parser.add_argument("--num-gpus", type=int, default=int(os.environ.get("SM_NUM_GPUS", "0")))

    train(parser.parse_args())
