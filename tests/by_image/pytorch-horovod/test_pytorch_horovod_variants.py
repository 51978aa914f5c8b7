"""What each variant carries: CUDA and NCCL in the gpu one (usable with no GPU: jobs run on the
CPU), Gloo and MPI in both, a torchvision that imports next to its torch."""

from smimages.testing.harness import client
from smimages.testing.images import CATALOG

PROBE = """
import torch, torchvision, horovod.torch as hvd
nccl = ".".join(map(str, torch.cuda.nccl.version())) if torch.version.cuda else None
print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.version.cuda,
      "nccl", nccl, "gpu", torch.cuda.is_available(), "hvd_nccl", bool(hvd.nccl_built()))
hvd.init(); print("allreduce", hvd.allreduce(torch.ones(3), op=hvd.Sum).tolist())
"""


CHECK_MARK = "=== horovodrun --check-build"


def run(image, *command):
    return client().containers.run(image, list(command), remove=True, stderr=True).decode()


def test_versions_and_horovod_build(image, image_name):
    pins = CATALOG[image_name].pins()
    cuda = ".".join(pins["nvidia-cuda-runtime"].split(".")[:2])
    cu = "+cu" + cuda.replace(".", "")
    out = run(image, "bash", "-c", f"python -c '{PROBE}' && echo {CHECK_MARK} && horovodrun --check-build")
    out, check = out.split(CHECK_MARK)
    expected = (f"torch {pins['torch']}{cu} torchvision {pins['torchvision']}{cu} cuda {cuda} "
                f"nccl {pins['nvidia-nccl-cu13']} gpu False")
    assert expected in out, out
    assert "allreduce [1.0, 1.0, 1.0]" in out, out
    for built in ("PyTorch", "MPI", "Gloo"):
        assert f"[X] {built}" in check, check
    gpu = CATALOG[image_name].accelerator == "gpu"
    assert (f"[{'X' if gpu else ' '}] NCCL" in check) and (f"hvd_nccl {gpu}" in out), check + out


def test_no_host_key_or_private_key_is_baked_in(image):
    """Each job makes its own SSH host keys and key pair at start (a shared baked-in key is not ours)."""
    out = run(image, "python", "-c",
              "import glob; print(glob.glob('/etc/ssh/ssh_host_*') + glob.glob('/root/.ssh/id_*'))")
    assert out.strip() == "[]", out
