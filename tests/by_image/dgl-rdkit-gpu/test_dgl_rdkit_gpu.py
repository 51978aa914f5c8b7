"""dgl-rdkit-gpu, run on CPU (no GPU on these machines): the fallback build saying what it is. The
Tox21 jobs of its parent, dgl-rdkit-cpu, run for it too (tests/by_image/dgl-rdkit-cpu)."""

import os
import subprocess
import sys

import pytest

from smimages.catalog import ROOT
from smimages.testing.harness import client, run_job
from smimages.testing.images import CATALOG
from smimages.testing.tox21 import run_in, tox21_job

PINS = CATALOG["dgl-rdkit-gpu"].pins()
FALLBACK = f"dgl-rdkit-gpu FALLBACK build: CUDA torch {PINS['torch']} with PyPI's CPU-only DGL {PINS['dgl']}"


def test_fallback_build_is_labelled(image):
    labels = client().images.get(image).attrs["Config"]["Labels"]
    assert labels["io.sm-images.dgl-build"] == "cpu-fallback"
    assert labels["io.sm-images.dgl-source"].startswith(f"PyPI: DGL {PINS['dgl']}, a CPU-only build")


def test_torch_is_the_cuda_build_and_dgl_the_cpu_one(image):
    out = run_in(image, "import dgl, torch\n"
                        "try:\n    dgl.graph(([0], [1])).to('cuda'); print('dgl-cuda yes')\n"
                        "except Exception as e:\n    print('dgl-cuda no', type(e).__name__)\n"
                        "print('torch-cuda', torch.version.cuda)")
    assert "torch-cuda 12.1" in out
    assert "dgl-cuda no" in out  # PyPI's DGL: what the fallback label says


@pytest.mark.expect_log_errors("the failure under test")
def test_every_job_log_carries_the_fallback_notice(image, tmp_path):
    job = tox21_job(tmp_path, entrypoint="missing.py")  # any job: the notice comes before the script
    [r] = run_job(image, job)
    assert f"image notice: {FALLBACK}" in r.logs


def test_an_unreachable_dgl_cuda_source_fails_the_build_and_names_it(image):
    """Given a DGL CUDA wheel source that cannot be reached, the build stops: it never labels a CPU DGL as CUDA."""
    source = "https://127.0.0.1:9/dgl/repo.html"
    proc = subprocess.run([sys.executable, "-m", "smimages.build", "dgl-rdkit-gpu"], cwd=ROOT,
                          env={**os.environ, "BUILD_ARGS": f"DGL_CUDA_FIND_LINKS={source}"},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert f"dgl=={PINS['dgl']}+cu121 could not be installed from DGL_CUDA_FIND_LINKS={source}" in proc.stdout
    assert proc.stderr.strip().startswith("build of image 'dgl-rdkit-gpu' failed at step [dgl-cuda")
    assert client().images.get(image).labels["io.sm-images.dgl-build"] == "cpu-fallback"  # the tag is untouched
