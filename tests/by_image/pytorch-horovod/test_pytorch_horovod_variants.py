"""What each variant carries: CUDA and NCCL in the gpu one (usable with no GPU: jobs run on the
CPU), Gloo and MPI in both, a torchvision that imports next to its torch."""

import pytest
from harness import client
from mnist_jobs import VARIANTS

PROBE = """
import torch, torchvision, horovod.torch as hvd
nccl = ".".join(map(str, torch.cuda.nccl.version())) if torch.version.cuda else None
print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.version.cuda,
      "nccl", nccl, "gpu", torch.cuda.is_available(), "hvd_nccl", bool(hvd.nccl_built()))
hvd.init(); print("allreduce", hvd.allreduce(torch.ones(3), op=hvd.Sum).tolist())
"""


def run(image, *command):
    return client().containers.run(image, list(command), remove=True, stderr=True).decode()


@pytest.mark.parametrize("variant", VARIANTS)
def test_versions_and_horovod_build(image_of, variant):
    image = image_of(variant)
    out = run(image, "python", "-c", PROBE)
    assert "torch 2.13.0+cu130 torchvision 0.28.0+cu130 cuda 13.0 nccl 2.29.7 gpu False" in out, out
    assert "allreduce [1.0, 1.0, 1.0]" in out, out
    check = run(image, "horovodrun", "--check-build")
    for built in ("PyTorch", "MPI", "Gloo"):
        assert f"[X] {built}" in check, check
    gpu = variant.endswith("gpu")
    assert (f"[{'X' if gpu else ' '}] NCCL" in check) and (f"hvd_nccl {gpu}" in out), check + out


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_host_key_or_private_key_is_baked_in(image_of, variant):
    """Each job makes its own SSH host keys and key pair at start (a shared baked-in key is not ours)."""
    out = run(image_of(variant), "python", "-c",
              "import glob; print(glob.glob('/etc/ssh/ssh_host_*') + glob.glob('/root/.ssh/id_*'))")
    assert out.strip() == "[]", out
