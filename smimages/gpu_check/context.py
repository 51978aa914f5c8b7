"""What the checks share: the time budget, the log and scratch folders, and what the environment
check found (None until it has run)."""

from dataclasses import dataclass
from pathlib import Path

from smimages.gpu_check.launch import Budget


@dataclass
class Context:
    budget: Budget
    logs: Path
    tmp: Path
    info: dict = None

    @property
    def gpus(self):
        return len(self.info["gpus"]) if self.info and self.info["cuda_available"] else 0
