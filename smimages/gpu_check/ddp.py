"""The ddp check: examples/pytorch-mnist-ddp/mnist.py, one process per GPU over nccl (two over
gloo on the CPU without a GPU), launched by the shared entrypoint's `train` (torch_distributed) on a
temporary /opt/ml when it can run here, else by torchrun; it passes on a real test accuracy and
every rank's final weights identical."""

import json
import os
import re
import shutil
import sys
import time

from smimages.gpu_check import digits
from smimages.gpu_check.launch import ROOT, child_env, run, torchrun
from smimages.gpu_check.report import PASS, SKIP, Result, failed

MIN_ACCURACY = 0.5  # ten classes: chance is 0.1; a few epochs on the digits reach 0.9


def check_ddp(ctx):
    started = time.monotonic()
    modules = ctx.info["modules"]
    for need, why in (("numpy", "the example and the digits need it"), ("torchvision", "the example imports it")):
        if modules.get(need):
            return Result("ddp", SKIP, f"{need} is not importable ({why}): {modules[need]}")
    gpus = ctx.gpus
    backend = "nccl" if gpus else "gloo"
    # The entrypoint needs sagemaker-training and psutil (in every image; on a bare machine, maybe not).
    via_entrypoint = (not modules["sagemaker_training"] and not modules["psutil"]
                      and os.environ.get("GPU_CHECK_LAUNCHER", "") != "torchrun")
    work = ctx.tmp / "ddp"
    data = "digits"
    try:
        mnist = digits.from_scikit_learn(work / "data")
    except ImportError as e:  # no scikit-learn: the same files, from synthetic digits
        mnist = digits.synthetic(work / "data")
        data = f"synthetic digits ({e.name or 'scikit-learn'} is not importable)"
    args = {"epochs": "3", "lr": "0.05", "batch-size": "32", "backend": backend}
    timeout = ctx.budget.timeout(240)
    if via_entrypoint:
        launcher = "the entrypoint's train (torch_distributed)"
        base, r = _train_with_entrypoint(ctx, work, mnist, args, timeout)
        launched = re.search(r"torchrun with (\d+) process", r.output)
        world = int(launched.group(1)) if launched else max(gpus, 1)
    else:
        launcher = "torchrun"
        world = gpus or 2
        script = ROOT / "examples" / "pytorch-mnist-ddp" / "mnist.py"
        flags = [x for k, v in args.items() for x in (f"--{k}", v)]
        r = run(torchrun(world, script, *flags, "--model-dir", work / "model", "--train", mnist["train"],
                         "--test", mnist["test"]), timeout, ctx.logs / "ddp.log")
    label = f"{launcher}, backend {backend}, world size {world}, {data}"
    if not r.ok:
        return failed("ddp", started, f"{label}: {r.outcome(timeout)}", r)
    problems, accuracy = ddp_outcome(r.output, world)
    if gpus and world != gpus:
        problems.append(f"{world} process(es) for {gpus} visible GPU(s)")
    if via_entrypoint and not (base / "output" / "success").exists():
        problems.append("train exited 0 but wrote no output/success")
    if problems:
        return failed("ddp", started, f"{label}: {'; '.join(problems)}", r)
    same = "the ranks' final weights identical" if world > 1 else "one rank"
    figures = f"{label}: test accuracy {accuracy:.3f}, {same}, {r.seconds:.1f} s"
    if not gpus:
        return Result("ddp", SKIP, f"no CUDA GPU for nccl; the same run with gloo on the CPU passed: {figures}",
                      time.monotonic() - started)
    return Result("ddp", PASS, figures, time.monotonic() - started)


def ddp_outcome(output, world_size):
    """(problems, accuracy) from the DDP example's log: its test accuracy, and one weights digest
    per rank, all the same (DistributedDataParallel kept the ranks in step)."""
    from smimages.testing.pytorch_mnist import ACCURACY, DIGEST

    problems = []
    digests = {int(rank): digest for rank, _, digest in DIGEST.findall(output)}
    if sorted(digests) != list(range(world_size)):
        problems.append(f"weights digests from ranks {sorted(digests)}, expected 0..{world_size - 1}")
    elif len(set(digests.values())) != 1:
        problems.append("the ranks ended with different weights")
    found = ACCURACY.findall(output)
    accuracy = float(found[-1]) if found else None
    if accuracy is None:
        problems.append("no test_accuracy line")
    elif accuracy < MIN_ACCURACY:
        problems.append(f"test accuracy {accuracy:.3f} is under {MIN_ACCURACY}")
    return problems, accuracy


def _train_with_entrypoint(ctx, work, mnist, args, timeout):
    """The DDP example as SageMaker runs it: a /opt/ml tree under `work`, `train` with
    SAGEMAKER_BASE_DIR pointing there, torch_distributed as the SDK's PyTorch estimator asks."""
    base = work / "ml" / "algo-1"
    config = base / "input" / "config"
    config.mkdir(parents=True)
    (base / "output").mkdir()
    (base / "model").mkdir()
    code = base / "code"
    shutil.copytree(ROOT / "examples" / "pytorch-mnist-ddp", code)
    for channel, folder in mnist.items():
        shutil.copytree(folder, base / "input" / "data" / channel)
    hyperparameters = {"sagemaker_program": "mnist.py", "sagemaker_submit_directory": str(code),
                       "sagemaker_torch_distributed_enabled": "true", **args}
    files = {"hyperparameters.json": hyperparameters,
             "inputdataconfig.json": {c: {"TrainingInputMode": "File"} for c in mnist},
             "resourceconfig.json": {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}}
    for name, content in files.items():
        (config / name).write_text(json.dumps(content))
    drop = [k for k in os.environ if k.startswith(("SM_", "SAGEMAKER_"))]
    env = child_env({"SAGEMAKER_BASE_DIR": str(base), "SM_ENTRYPOINT_PYTHON": sys.executable}, drop)
    r = run([sys.executable, "-c", "from sm_entrypoint import cli; cli.train()"], timeout, ctx.logs / "ddp.log", env)
    return base, r
