"""What runs inside the child processes the checks start (`python3 -m smimages.gpu_check <name>
<args>`, by name in CHILDREN): the only code here that imports torch, horovod and the model
server. Each reports to the parent with report.say (a marked line the parent reads with
report.marked), or just by its exit code and output."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from smimages.gpu_check.report import say
from smimages.gpu_check.served_model import BIAS, INFERENCE, INPUT, WEIGHT, WORKER_VAR

# The packages the checks use, probed by env: a check whose package does not import says SKIP.
MODULES = ("numpy", "torchvision", "sklearn", "gunicorn", "sagemaker_training", "psutil", "horovod.torch")


def env():
    """The environment check's findings: versions, the GPUs (a matmul on each against the CPU),
    NCCL, the driver, and why each of MODULES does not import ("" when it does)."""
    info = {"python": sys.version.split()[0], "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    modules = {}  # name -> "" when it imports, else why not
    for name in MODULES:
        try:
            __import__(name)
            modules[name] = ""
        except Exception as e:  # noqa: BLE001 - any failure to import is the reason a check skips
            modules[name] = f"{type(e).__name__}: {e}"[:200]
    import torch
    import torch.distributed as dist

    info.update(torch=torch.__version__, cuda_build=torch.version.cuda, cuda_available=torch.cuda.is_available(),
                nccl_available=dist.is_available() and dist.is_nccl_available(), modules=modules, gpus=[], nccl=None,
                driver_gpus=_driver_gpus())
    if info["cuda_available"]:
        try:
            version = torch.cuda.nccl.version()
            info["nccl"] = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
        except Exception as e:  # noqa: BLE001 - said in the report
            info["nccl"] = f"unknown ({e})"
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpu = {"index": i, "name": props.name, "memory_gb": props.total_memory / 2**30,
                   "capability": f"{props.major}{props.minor}", "matmul_ok": False, "matmul_error": ""}
            try:
                a = torch.randn(512, 512, generator=torch.Generator().manual_seed(i), dtype=torch.float64)
                on_gpu = (a.to(f"cuda:{i}") @ a.to(f"cuda:{i}")).cpu()
                gpu["matmul_ok"] = torch.allclose(on_gpu, a @ a, rtol=1e-6, atol=1e-6)
                gpu["matmul_error"] = "" if gpu["matmul_ok"] else "differs from the CPU's"
            except Exception as e:  # noqa: BLE001 - a GPU that cannot compute is the finding
                gpu["matmul_error"] = f"{type(e).__name__}: {e}"[:300]
            info["gpus"].append(gpu)
        smi = shutil.which("nvidia-smi")
        if smi:
            try:
                out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                                     capture_output=True, text=True, timeout=20).stdout.split()
                info["driver"] = out[0] if out else None
            except (OSError, subprocess.TimeoutExpired):
                pass
    say(info)


def _driver_gpus():
    """How many GPUs the NVIDIA driver sees, whatever torch makes of them (0 without a driver)."""
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


def nccl_probe():
    """One rank under torchrun: an all_reduce checked, then timed on 256 MB."""
    import datetime

    import torch
    import torch.distributed as dist

    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl", timeout=datetime.timedelta(seconds=120))
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{local_rank}")
    t = torch.full((1024,), float(rank + 1), device=device)
    dist.all_reduce(t)
    expected = world * (world + 1) / 2
    sum_ok = bool(torch.all(t == expected).item())
    devices = [None] * world
    dist.all_gather_object(devices, f"cuda:{local_rank} ({torch.cuda.get_device_name(local_rank)})")
    big = torch.ones(64 * 2**20, device=device)  # 256 MB of float32
    for _ in range(2):
        dist.all_reduce(big)
    torch.cuda.synchronize()
    repeats = 5
    begin = time.perf_counter()
    for _ in range(repeats):
        dist.all_reduce(big)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - begin) / repeats
    size = big.numel() * 4
    if rank == 0:
        say({"sum_ok": sum_ok, "sum": t[0].item(), "expected": expected, "devices": devices,
             "size_mb": size / 2**20, "ms": seconds * 1000,
             "busbw_gbs": size / seconds / 1e9 * 2 * (world - 1) / world})
    dist.barrier()
    dist.destroy_process_group()


def model(model_dir):
    """model.pt (TorchScript, on the CPU: model_fn moves it) and code/inference.py."""
    import torch

    layer = torch.nn.Linear(4, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(WEIGHT))
        layer.bias.copy_(torch.tensor(BIAS))
    code = Path(model_dir) / "code"
    code.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(layer), str(Path(model_dir) / "model.pt"))
    (code / "inference.py").write_text(INFERENCE)


def serve(port, pid_file):
    """The shared model server's gunicorn part as `serve` runs it (settings from the environment,
    the script and the image's defaults, workers placed per GPU), bound to 127.0.0.1:port instead
    of the unix socket behind nginx. Each worker's number goes to WORKER_VAR for the script."""
    import logging

    from sm_entrypoint.serving import runner
    from sm_entrypoint.serving.settings import ServingSettings

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s [gpu-check serve] %(levelname)s %(message)s")
    Path(pid_file).write_text(str(os.getpid()))
    settings = ServingSettings.from_env()
    runner.share_cpus(settings)
    handlers = runner.prepare(settings)
    run_dir = tempfile.mkdtemp(prefix="gpu-check-serve-")

    class TcpModelServer(runner.ModelServer):
        def load_config(self):
            super().load_config()
            self.cfg.set("bind", [f"127.0.0.1:{port}"])

        def _post_fork(self, arbiter, worker):
            os.environ[WORKER_VAR] = str(worker.age - 1)
            super()._post_fork(arbiter, worker)

    try:
        TcpModelServer(settings, handlers, run_dir).run()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def worker(number):
    """Worker `number` without gunicorn: what runner.ModelServer does after the fork (the GPU by
    gpu_for, model_fn with the context), then one request through the hooks."""
    from sm_entrypoint.serving import handlers as hooks
    from sm_entrypoint.serving import user_script
    from sm_entrypoint.serving.context import Context as ServingContext
    from sm_entrypoint.serving.context import gpu_for
    from sm_entrypoint.serving.settings import ServingSettings

    settings = ServingSettings.from_env()
    path = user_script.script_path(settings)
    handlers = hooks.resolve(user_script.load(path) if path else None,
                             user_script.load_defaults(settings.default_handlers))
    os.environ[WORKER_VAR] = str(number)
    gpu_id = gpu_for(number)
    loaded = handlers.load_model(settings.model_dir, ServingContext(settings.model_dir, gpu_id))
    context = ServingContext(settings.model_dir, gpu_id, {"Content-Type": "application/json"})
    body, _ = handlers.transform(loaded, json.dumps(INPUT).encode(), "application/json", "application/json", context)
    say(json.loads(body))


def hvd_probe():
    """One process under horovodrun: an allreduce checked, and what Horovod was built with."""
    import horovod.torch as hvd
    import torch

    hvd.init()
    if torch.cuda.is_available():
        torch.cuda.set_device(hvd.local_rank())
        device = torch.device(f"cuda:{hvd.local_rank()}")
    else:
        device = torch.device("cpu")
    t = torch.full((1024,), float(hvd.rank() + 1), device=device)
    total = hvd.allreduce(t, op=hvd.Sum)
    expected = hvd.size() * (hvd.size() + 1) / 2
    devices = hvd.allgather_object(str(device))
    if hvd.rank() == 0:
        say({"sum_ok": bool(torch.all(total == expected).item()), "sum": total[0].item(), "expected": expected,
             "device": ", ".join(devices), "nccl_built": bool(hvd.nccl_built()),
             "gloo_built": bool(hvd.gloo_built()), "mpi_built": bool(hvd.mpi_built())})
    hvd.shutdown()


# The command line's first argument -> the child; the rest of the arguments are its own.
CHILDREN = {"_env": env, "_nccl_probe": nccl_probe, "_model": model, "_serve": serve,
            "_worker": lambda number: worker(int(number)), "_hvd_probe": hvd_probe}
