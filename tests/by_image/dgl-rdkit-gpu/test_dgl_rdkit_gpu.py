"""dgl-rdkit-gpu, run on CPU (no GPU on these machines): the Tox21 workload's jobs (shared with
dgl-rdkit-cpu in by_image/dgl_rdkit_jobs.py), and the fallback build saying what it is."""

import os
import subprocess
import sys

import pytest
from by_image.dgl_rdkit_jobs import *  # noqa: F403 - the shared tests run here against this image
from by_image.dgl_rdkit_jobs import REPO, run_in, tox21_job
from harness import client, run_job

FALLBACK = "dgl-rdkit-gpu FALLBACK build: CUDA torch 2.2.1 with PyPI's CPU-only DGL 2.1.0"


@pytest.fixture
def image_name():
    return "dgl-rdkit-gpu"


def test_fallback_build_is_labelled(image):
    labels = client().images.get(image).attrs["Config"]["Labels"]
    assert labels["io.sm-images.dgl-build"] == "cpu-fallback"
    assert labels["io.sm-images.dgl-source"].startswith("PyPI: DGL 2.1.0, a CPU-only build")


def test_torch_is_the_cuda_build_and_dgl_the_cpu_one(image):
    out = run_in(image, "import dgl, torch\n"
                        "try:\n    dgl.graph(([0], [1])).to('cuda'); print('dgl-cuda yes')\n"
                        "except Exception as e:\n    print('dgl-cuda no', type(e).__name__)\n"
                        "print('torch-cuda', torch.version.cuda)")
    assert "torch-cuda 12.1" in out
    assert "dgl-cuda no" in out  # PyPI's DGL: what the fallback label says


def test_every_job_log_carries_the_fallback_notice(image, tmp_path):
    job = tox21_job(tmp_path, entrypoint="missing.py")  # any job: the notice comes before the script
    [r] = run_job(image, job)
    assert f"image notice: {FALLBACK}" in r.logs


def test_an_unreachable_dgl_cuda_source_fails_the_build_and_names_it(image):
    """Given a DGL CUDA wheel source that cannot be reached, the build stops: it never labels a CPU DGL as CUDA."""
    source = "https://127.0.0.1:9/dgl/repo.html"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "build.py"), "dgl-rdkit-gpu"], cwd=REPO,
                          env={**os.environ, "BUILD_ARGS": f"DGL_CUDA_FIND_LINKS={source}"},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert f"dgl==2.1.0+cu121 could not be installed from DGL_CUDA_FIND_LINKS={source}" in proc.stdout
    assert proc.stderr.strip().startswith("build of image 'dgl-rdkit-gpu' failed at step [dgl-cuda")
    assert client().images.get(image).labels["io.sm-images.dgl-build"] == "cpu-fallback"  # the tag is untouched
