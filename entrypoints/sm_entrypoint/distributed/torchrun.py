"""torch_distributed: torchrun on every host, node rank = the host's index, the first host's
address as the rendezvous. torchrun sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_* for each process.
It runs through torchrun_agent, torchrun with the store's host leaving last (see there why)."""

from .. import process
from ..script import Script
from . import launcher_stderr, rank_error

MASTER_PORT = "7777"  # what sagemaker-training's torch_distributed runner uses


class Torchrun(rank_error.NamesFailingRank, Script):
    launcher = "torchrun"

    @classmethod
    def from_script(cls, script, hosts, current, nproc):
        plan = cls(script.path, script.args, script.cwd, script.env_vars)
        plan.hosts, plan.node_rank, plan.nproc = hosts, hosts.index(current), nproc
        return plan

    def __str__(self):
        return f"torchrun of {super().__str__()}"

    def find_rank_error(self, lines):
        return launcher_stderr.from_torchrun(lines, self.hosts[self.node_rank])

    def command(self):
        cmd = [process.python(), "-m", "sm_entrypoint.distributed.torchrun_agent",
               "--nnodes", str(len(self.hosts)), "--nproc_per_node", str(self.nproc)]
        if len(self.hosts) > 1:
            cmd += ["--node_rank", str(self.node_rank), "--master_addr", self.hosts[0],
                    "--master_port", MASTER_PORT]
        else:
            cmd += ["--standalone"]
        return [*cmd, self.path, *self.args]
