"""images/builder/lock_select.py, the one lock splitter every image's build stages use, run as the
program it is in sm-images/builder (`lock-select`)."""

import subprocess
import sys

from smimages.catalog import ROOT

TOOL = ROOT / "images" / "builder" / "lock_select.py"
LOCK = """# via pip-compile
numpy==2.1.0 \\
    --hash=sha256:aa \\
    --hash=sha256:bb
    # via torch
torch==2.13.0 \\
    --hash=sha256:cc
nvidia-nccl-cu13==2.29.7 \\
    --hash=sha256:dd
"""


def select(tmp_path, *args):
    lock = tmp_path / "requirements.lock"
    lock.write_text(LOCK)
    return subprocess.run([sys.executable, str(TOOL), str(lock), *args], capture_output=True, text=True, check=True).stdout


def test_only_and_skip_keep_whole_blocks_with_their_hashes(tmp_path):
    assert select(tmp_path, "--only", "^torch$") == "torch==2.13.0 \\\n    --hash=sha256:cc\n"
    assert select(tmp_path, "--skip", "^(torch|nvidia-.*)$") == "numpy==2.1.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n"


def test_with_neither_every_package_is_kept(tmp_path):
    assert [line.split()[0] for line in select(tmp_path).splitlines() if "==" in line] == \
        ["numpy==2.1.0", "torch==2.13.0", "nvidia-nccl-cu13==2.29.7"]
