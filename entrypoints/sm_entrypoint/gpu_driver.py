"""The NVIDIA driver against the image's PyTorch, checked at the start of `train` and `serve`.

On a host whose driver is older than PyTorch's CUDA build needs, PyTorch quietly sees no GPU and
the job or endpoint runs on the CPU. So, when the image's PyTorch is a CUDA build and the host has
a GPU, the first log line says when the driver is too old: both versions and what to change. When
the host's driver is too old but the host provides NVIDIA's forward-compatibility libraries new
enough for the build (a libcuda in /usr/local/cuda/compat, as SageMaker's GPU AMIs and NVIDIA's
containers do), `train` or `serve` starts again with that folder first on LD_LIBRARY_PATH, and
the first line says so instead. No GPU, no PyTorch or a CPU build: nothing is said and nothing changes.

torch is never imported here (seconds, and most images lack it): its build's CUDA version is read
from torch/version.py."""

import ast
import importlib.util
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

from .serving.context import NVIDIA_GPUS, visible_gpus

log = logging.getLogger("sm_entrypoint")

# The oldest Linux x86_64 driver each CUDA major release runs on. Keyed by the major only: since
# CUDA 11, a build of any minor runs on its major's first driver ("minor version compatibility"):
# NVIDIA's CUDA Toolkit Release Notes, https://docs.nvidia.com/cuda/cuda-toolkit-release-notes/,
# Table 3 "CUDA Toolkit and Corresponding Driver Versions" (CUDA 13.0 GA >=580.65.06, CUDA 12.0 GA
# >=525.60.13; the minor-compatibility table: CUDA 12.x >=525.60.13, 11.x >=450.80.02), and
# https://docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html
# (CUDA 13.x >= 580, 12.x >= 525, 11.x >= 450).
MIN_DRIVER = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}

DRIVER_VERSION_FILE = "/proc/driver/nvidia/version"  # the kernel module's own line, no process
GPU_DEVICE = "/dev/nvidia0"
# Forward compatibility (a newer user-mode libcuda over an older kernel driver; data-center GPUs
# only): https://docs.nvidia.com/deploy/cuda-compatibility/forward-compatibility.html
COMPAT_DIR = "/usr/local/cuda/compat"
VERSION = r"\d+\.\d+(?:\.\d+)*"


@dataclass(frozen=True)
class Host:
    """Where the facts are read; tests point these at files of their own."""
    gpu_dir: str = NVIDIA_GPUS
    gpu_device: str = GPU_DEVICE
    driver_version_file: str = DRIVER_VERSION_FILE
    compat_dir: str = COMPAT_DIR
    find_spec: Callable = importlib.util.find_spec
    nvidia_smi_timeout_s: float = 3.0  # a wedged driver can hang nvidia-smi: never hold up the start


def version_key(version):
    return tuple(int(part) for part in version.split("."))


def gpu_present(host):
    """A GPU the driver sees, whatever CUDA_VISIBLE_DEVICES says (hence the empty environment)."""
    return visible_gpus({}, host.gpu_dir) > 0 or os.path.exists(host.gpu_device)


def torch_cuda(host):
    """The CUDA version the installed torch was built for ("13.0"); None for a CPU build or no
    torch. find_spec locates the package without running it; version.py is plain assignments."""
    try:
        spec = host.find_spec("torch")
        folder = next(iter(spec.submodule_search_locations or []))
        with open(os.path.join(folder, "version.py"), encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (ImportError, ValueError, AttributeError, StopIteration, OSError, SyntaxError):
        return None
    for node in tree.body:  # `cuda: Optional[str] = '13.0'` (older torch: `cuda = '12.1'`)
        target = node.target if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [None])[0]
        if getattr(target, "id", None) == "cuda" and isinstance(getattr(node, "value", None), ast.Constant):
            return node.value.value if isinstance(node.value.value, str) else None
    return None


def driver_version(host):
    """The host's NVIDIA driver ("535.104.05"), from the kernel module's line, else nvidia-smi;
    None when neither answers."""
    try:
        with open(host.driver_version_file, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        text = _nvidia_smi(host.nvidia_smi_timeout_s)
    found = re.search(rf"\b({VERSION})\b", text)
    return found.group(1) if found else None


def _nvidia_smi(timeout_s):
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=timeout_s, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def compat_version(host):
    """The driver version of the forward-compatibility libcuda (libcuda.so.580.65.06), if any."""
    try:
        names = os.listdir(host.compat_dir)
    except OSError:
        return None
    found = [m.group(1) for m in (re.fullmatch(rf"libcuda\.so\.({VERSION})", n) for n in names) if m]
    return max(found, key=version_key, default=None)


def assess(host):
    """(the compat folder to put first on LD_LIBRARY_PATH or None, [(level, line)] to log)."""
    if not gpu_present(host):
        return None, []
    cuda = torch_cuda(host)
    needed = MIN_DRIVER.get(int(cuda.split(".")[0])) if cuda and cuda.split(".")[0].isdigit() else None
    driver = driver_version(host) if needed else None
    if not driver or version_key(driver) >= version_key(needed):
        return None, []  # a CPU build, a driver that fits, or nothing we can tell: say nothing
    compat = compat_version(host)
    if compat and version_key(compat) >= version_key(needed):  # newer than the host's, by the above
        return host.compat_dir, [(logging.INFO, (
            f"NVIDIA driver {driver} is older than PyTorch's CUDA {cuda} build needs (>= {needed}): "
            f"using NVIDIA's forward-compatibility libraries in {host.compat_dir} (libcuda {compat}) "
            f"for this container's processes, first on LD_LIBRARY_PATH (data-center GPUs only)"))]
    if compat:  # too old to help: leave it alone, and say what it holds
        driver = f"{driver} (forward-compatibility libcuda {compat} in {host.compat_dir})"
    return None, [(logging.WARNING, _too_old(cuda, needed, driver))]


def _too_old(cuda, needed, driver):
    return (f"GPU present but PyTorch's CUDA {cuda} build needs NVIDIA driver >= {needed}; this host has "
            f"{driver}, so PyTorch will not use the GPU: update the driver (endpoints: choose an "
            f"inference_ami_version with a newer driver; training jobs and other hosts: an AMI or "
            f"instance type whose driver is newer) or use an image built for an older CUDA")


HOST = Host()


def check(env=None, host=None, execve=os.execve):
    """At the very start of `train` and `serve`, after logging is set up: log what `assess` finds;
    when the compat folder must come first on LD_LIBRARY_PATH and does not yet, start this command
    again with it there. The dynamic loader reads LD_LIBRARY_PATH once, when a process starts, and
    `serve`'s workers are forks of this process: changing os.environ alone would reach only the
    processes the job spawns."""
    env = os.environ if env is None else env
    compat, lines = assess(host or HOST)
    first = env.get("LD_LIBRARY_PATH", "").split(":")[0]
    if compat and os.path.normpath(first or ".") != os.path.normpath(compat):
        env["LD_LIBRARY_PATH"] = ":".join(p for p in (compat, env.get("LD_LIBRARY_PATH")) if p)
        sys.stdout.flush()
        sys.stderr.flush()
        try:  # same PID (tini's child stays its child); the new process logs the lines itself
            return execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
        except OSError as e:
            lines.append((logging.WARNING, f"could not restart with {compat} on LD_LIBRARY_PATH: {e}"))
    for level, line in lines:
        log.log(level, "%s", line)
