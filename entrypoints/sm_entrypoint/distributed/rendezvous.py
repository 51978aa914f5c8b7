"""What a plain script on each host needs to form a torch.distributed group by itself (`env://`):
MASTER_ADDR (the first host), MASTER_PORT, WORLD_SIZE (hosts), RANK (this host's index). A value
the job's own environment already gives wins."""

import os

from ..errors import JobError
from ..script import Script
from . import rank_error

MASTER_PORT = "29500"  # what AWS's PyTorch training toolkit sets


def positive_int(raw, name):
    try:
        value = int(str(raw).strip().strip('"'))
    except ValueError:
        value = 0
    if value < 1:
        raise JobError(f"hyperparameter {name} must be a positive whole number, got {raw!r}")
    return value


def variables(hosts, current, interface):
    values = {
        "MASTER_ADDR": hosts[0],
        "MASTER_PORT": MASTER_PORT,
        "WORLD_SIZE": str(len(hosts)),
        "RANK": str(hosts.index(current)),
        "NCCL_SOCKET_IFNAME": str(interface or "eth0"),
    }
    return {k: os.environ.get(k, v) for k, v in values.items()}


class Rank(rank_error.NamesFailingRank, Script):
    """The script on one host of several: itself one rank of the group, so its failure names it."""

    @classmethod
    def from_script(cls, script, env_vars, host):
        plan = cls(script.path, script.args, script.cwd, env_vars)
        plan.host = host
        return plan

    def find_rank_error(self, lines):
        return rank_error.from_rank(lines, self.env_vars["RANK"], self.host)


def with_rendezvous(script, hosts, current, interface):
    env_vars = {**script.env_vars, **variables(hosts, current, interface)}
    if len(hosts) == 1:  # a job of one host: no rank to name when it fails
        script.env_vars = env_vars
        return script
    return Rank.from_script(script, env_vars, current)
