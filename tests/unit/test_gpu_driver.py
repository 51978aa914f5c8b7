"""The NVIDIA driver check at the start of `train` and `serve` (sm_entrypoint.gpu_driver), with the
host faked: /proc's files and the compat folder under tmp_path, torch's version.py written there,
nvidia-smi a script on PATH, the restart recorded instead of run."""

import importlib.machinery
import logging
import os
import subprocess
import sys

import pytest
from sm_entrypoint import gpu_driver

# /proc/driver/nvidia/version as the proprietary and the open kernel modules write it
OLD_DRIVER = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n"
NEW_DRIVER = ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  "
              "(dvs-builder@U16-I3-B03-4-3)  Thu Oct  9 14:39:09 UTC 2025\nGCC version:  gcc 12.2.0\n")


def torch_spec(tmp_path, cuda):
    """find_spec for a torch whose version.py says `cuda`, as torch 2.x writes that file."""
    folder = tmp_path / "site-packages" / "torch"
    folder.mkdir(parents=True)
    (folder / "version.py").write_text(
        "from typing import Optional\n\n__all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip']\n"
        f"__version__ = '2.13.0'\ndebug = False\ncuda: Optional[str] = {cuda!r}\n"
        "git_version = '0123abc'\nhip: Optional[str] = None\n")
    spec = importlib.machinery.ModuleSpec("torch", None, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    return lambda name: spec if name == "torch" else None


def fake_host(tmp_path, cuda="13.0", driver=OLD_DRIVER, gpus=1, compat=None, smi_timeout_s=3.0):
    gpu_dir = tmp_path / "gpus"
    gpu_dir.mkdir()
    for k in range(gpus):
        (gpu_dir / f"0000:{k:02x}:1e.0").mkdir()
    version_file = tmp_path / "version"
    if driver is not None:
        version_file.write_text(driver)
    compat_dir = tmp_path / "compat"
    if compat:
        compat_dir.mkdir()
        for name in ("libcuda.so", "libcuda.so.1", f"libcuda.so.{compat}", "libnvidia-ptxjitcompiler.so.1"):
            (compat_dir / name).write_text("")
    return gpu_driver.Host(gpu_dir=str(gpu_dir), gpu_device=str(tmp_path / "nvidia0"),
                           driver_version_file=str(version_file), compat_dir=str(compat_dir),
                           find_spec=torch_spec(tmp_path, cuda), nvidia_smi_timeout_s=smi_timeout_s)


class Restarts(list):
    def __call__(self, path, argv, env):
        self.append((path, argv, dict(env)))


def check(host, env=None):
    """Runs the check; the lines it logged and the restarts it asked for."""
    restarts, env = Restarts(), {} if env is None else env
    logger = logging.getLogger("sm_entrypoint")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)  # as cli's logging sets it (setLevel: the logger caches its answers)
    try:
        gpu_driver.check(env, host, restarts)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return [(r.levelno, r.getMessage()) for r in records], restarts


def test_an_old_driver_is_said_with_both_versions_and_what_to_change(tmp_path):
    lines, restarts = check(fake_host(tmp_path))
    assert len(lines) == 1 and not restarts
    level, line = lines[0]
    assert level == logging.WARNING
    assert line.startswith("GPU present but PyTorch's CUDA 13.0 build needs NVIDIA driver >= 580.65.06; "
                           "this host has 535.104.05")
    assert "inference_ami_version" in line and "an image built for an older CUDA" in line


def test_a_driver_that_fits_says_nothing(tmp_path):
    assert check(fake_host(tmp_path, driver=NEW_DRIVER)) == ([], [])


def test_a_cuda_12_build_needs_only_its_major_release_driver(tmp_path):
    """Minor version compatibility: a 12.8 build runs on 12.0's driver, 525.60.13."""
    (tmp_path / "fits").mkdir()
    (tmp_path / "old").mkdir()
    fits = fake_host(tmp_path / "fits", cuda="12.8", driver=OLD_DRIVER.replace("535.104.05", "525.60.13"))
    assert check(fits) == ([], [])
    lines, _ = check(fake_host(tmp_path / "old", cuda="12.8", driver=OLD_DRIVER.replace("535.104.05", "520.61.05")))
    assert "CUDA 12.8 build needs NVIDIA driver >= 525.60.13; this host has 520.61.05" in lines[0][1]


@pytest.mark.parametrize("cuda", [None, "99.0"], ids=["cpu-build", "unknown-cuda-major"])
def test_a_cpu_build_or_an_unknown_cuda_says_nothing(tmp_path, cuda):
    assert check(fake_host(tmp_path, cuda=cuda)) == ([], [])


def test_no_torch_says_nothing(tmp_path):
    host = fake_host(tmp_path)
    assert check(gpu_driver.Host(**{**host.__dict__, "find_spec": lambda name: None})) == ([], [])


def test_no_gpu_says_nothing(tmp_path):
    assert check(fake_host(tmp_path, gpus=0)) == ([], [])


def test_a_gpu_device_without_the_proc_folder_counts(tmp_path):
    host = fake_host(tmp_path, gpus=0)
    (tmp_path / "nvidia0").write_text("")
    lines, _ = check(host)
    assert "this host has 535.104.05" in lines[0][1]


def test_torch_cuda_reads_older_plain_assignments(tmp_path):
    host = fake_host(tmp_path)
    (tmp_path / "site-packages" / "torch" / "version.py").write_text("__version__ = '2.2.1'\ncuda = '12.1'\n")
    assert gpu_driver.torch_cuda(host) == "12.1"


def fake_nvidia_smi(tmp_path, monkeypatch, body):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n{body}\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_nvidia_smi_answers_when_proc_has_no_version(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path, monkeypatch, 'echo 535.104.05; echo 535.104.05')  # a line per GPU
    lines, _ = check(fake_host(tmp_path, driver=None))
    assert "this host has 535.104.05" in lines[0][1]


def test_a_hung_nvidia_smi_is_cut_short_and_nothing_is_said(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path, monkeypatch, "exec sleep 30")
    assert check(fake_host(tmp_path, driver=None, smi_timeout_s=0.3)) == ([], [])


def test_forward_compat_libraries_come_first_and_the_command_restarts(tmp_path):
    host = fake_host(tmp_path, compat="580.65.06")
    env = {"LD_LIBRARY_PATH": "/opt/lib"}
    lines, restarts = check(host, env)
    assert lines == []  # the restarted process says it
    [(path, argv, restarted_env)] = restarts
    assert path == sys.executable and argv[0] == sys.executable
    assert restarted_env["LD_LIBRARY_PATH"] == f"{host.compat_dir}:/opt/lib"

    lines, restarts = check(host, restarted_env)  # the restarted process: no second restart
    assert not restarts
    [(level, line)] = lines
    assert level == logging.INFO
    assert line.startswith("NVIDIA driver 535.104.05 is older than PyTorch's CUDA 13.0 build needs "
                           f"(>= 580.65.06): using NVIDIA's forward-compatibility libraries in {host.compat_dir} "
                           "(libcuda 580.65.06)")


def test_forward_compat_libraries_too_old_for_the_build_are_left_alone(tmp_path):
    lines, restarts = check(fake_host(tmp_path, compat="575.57.08"))
    assert not restarts
    assert "this host has 535.104.05 (forward-compatibility libcuda 575.57.08" in lines[0][1]


def test_forward_compat_libraries_are_unused_when_the_driver_fits(tmp_path):
    env = {}
    assert check(fake_host(tmp_path, driver=NEW_DRIVER, compat="590.44.01"), env) == ([], [])
    assert "LD_LIBRARY_PATH" not in env


DRIVE = """
import importlib.machinery, sys
from sm_entrypoint import cli, gpu_driver
spec = importlib.machinery.ModuleSpec("torch", None, is_package=True)
spec.submodule_search_locations = [{torch!r}]
gpu_driver.HOST = gpu_driver.Host(gpu_dir={gpus!r}, gpu_device="/nonexistent/nvidia0",
    driver_version_file={version!r}, compat_dir="/nonexistent", find_spec=lambda name: spec)
cli.{command}()
"""


@pytest.mark.parametrize("command, bad_setting", [
    ("train", "SM_ENTRYPOINT_HOST_WAIT_SECONDS"), ("serve", "SAGEMAKER_MODEL_SERVER_WORKERS")])
def test_the_line_is_the_first_of_the_log(tmp_path, command, bad_setting):
    """`train` and `serve` as the image runs them, ended at once by a bad setting: the driver line
    comes before anything else they log."""
    host = fake_host(tmp_path)
    code = DRIVE.format(torch=str(tmp_path / "site-packages" / "torch"), gpus=host.gpu_dir,
                        version=host.driver_version_file, command=command)
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(tmp_path / "ml"), bad_setting: "not-a-number"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    log_lines = done.stderr.splitlines()
    assert "WARNING GPU present but PyTorch's CUDA 13.0 build needs NVIDIA driver >= 580.65.06" in log_lines[0]
    assert len(log_lines) > 1  # the bad setting's own line follows


def test_serve_restarts_itself_once_with_the_compat_folder_first(tmp_path):
    """The restart for real (os.execve of `python -c ...`): the process that goes on has the
    folder first in the environment it was started with, the loader's, and logs the line once."""
    host = fake_host(tmp_path, compat="580.65.06")
    code = ("import atexit\n"
            "atexit.register(lambda: print('environ:', [v for v in open('/proc/self/environ', 'rb').read()"
            ".decode().split(chr(0)) if v.startswith('LD_LIBRARY_PATH=')]))\n")
    code += DRIVE.format(torch=str(tmp_path / "site-packages" / "torch"), gpus=host.gpu_dir,
                         version=host.driver_version_file, command="serve").replace(
        'compat_dir="/nonexistent"', f"compat_dir={host.compat_dir!r}")
    env = {**os.environ, "SAGEMAKER_MODEL_SERVER_WORKERS": "not-a-number", "LD_LIBRARY_PATH": "/opt/lib"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stdout.splitlines() == [f"environ: ['LD_LIBRARY_PATH={host.compat_dir}:/opt/lib']"]
    log_lines = done.stderr.splitlines()
    assert "INFO NVIDIA driver 535.104.05 is older than PyTorch's CUDA 13.0 build needs" in log_lines[0]
    assert sum("forward-compatibility" in line for line in log_lines) == 1
