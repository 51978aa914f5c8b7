"""distribution={"mpi": ...}: the first host (the master) runs mpirun over every host; mpirun
starts its daemons on the other hosts through SSH (ssh.py). A worker host serves SSH and waits
while the master answers that it is running; a master that stops answering fails the worker
within MASTER_GONE_S, with that cause (sagemaker-training's worker waits with no bound)."""

import logging
import math
import os
import shlex
import signal
import time

from .. import cluster, signals, waiting
from ..errors import JobError
from ..script import Script
from . import launcher_stderr, rank_error, ssh

log = logging.getLogger("sm_entrypoint")
MASTER_GONE_S = 30.0
LOG_EVERY_S = 60.0
# The user's mpirun options that place ranks otherwise than `--map-by slot` (then no host is named).
MAPPING_OPTIONS = ("-map-by", "--map-by", "-npernode", "--npernode", "-N", "-ppr", "--ppr",
                   "-rf", "--rankfile", "-rank-by", "--rank-by", "-npersocket", "--npersocket")


def mpirun_options(hosts, nproc, interface, custom_options):
    """mpirun's options, as sagemaker-training's MPI runner gives them, then the user's own.
    --tag-output (sagemaker-training passes it too) prefixes every line with its rank, so that
    the rank that failed first is known by its own error."""
    host_list = ["localhost"] if len(hosts) == 1 else hosts
    return [
        "mpirun", "--allow-run-as-root", "--tag-output",
        "--host", ",".join(f"{h}:{nproc}" for h in host_list), "-np", str(nproc * len(host_list)),
        "--bind-to", "none", "--map-by", "slot",
        "--mca", "btl_tcp_if_include", interface, "--mca", "oob_tcp_if_include", interface,
        "--mca", "plm_rsh_no_tree_spawn", "1", "--mca", "pml", "ob1", "--mca", "btl", "^openib",
        "--mca", "orte_abort_on_non_zero_status", "1", "--mca", "btl_vader_single_copy_mechanism", "none",
        "-x", f"NCCL_SOCKET_IFNAME={interface}", "-x", "PATH",
        *(["-x", "LD_LIBRARY_PATH"] if "LD_LIBRARY_PATH" in os.environ else []),
        *shlex.split(custom_options),
    ]


class Master(rank_error.NamesFailingRank, Script):
    launcher = "mpirun"

    @classmethod
    def from_script(cls, script, hosts, nproc, custom_options, interface, settings):
        plan = cls(script.path, script.args, script.cwd, script.env_vars)
        plan.hosts, plan.nproc, plan.settings = hosts, nproc, settings
        plan.custom_options, plan.interface = str(custom_options), str(interface or "eth0")
        return plan

    def __str__(self):
        return f"mpirun of {super().__str__()}"

    def command(self):
        exported = [a for name in sorted(self.env_vars) for a in ("-x", name)]
        return [*mpirun_options(self.hosts, self.nproc, self.interface, self.custom_options), *exported,
                *super().command()]

    def find_rank_error(self, lines):
        custom_mapping = any(o.split("=")[0] in MAPPING_OPTIONS for o in shlex.split(self.custom_options))
        return launcher_stderr.from_mpirun(lines, None if custom_mapping else self.hosts, self.nproc)

    def run(self):
        if len(self.hosts) > 1:
            public_key = ssh.make_key()
            ssh.serve_public_key(public_key, self.settings.key_port)  # first: the workers need nothing else
            ssh.authorize(public_key)  # mpirun may reach this host through SSH too
            ssh.start_sshd()
            waiting.each(self.hosts[1:], lambda host: ssh.wait_reachable(host, self.settings.host_wait_s))
        super().run()


MPI_DAEMONS = ("orted", "prted")  # mpirun's daemon on every other host: Open MPI 4, Open MPI 5


def mpi_daemon_running(proc="/proc"):
    """Whether mpirun's daemon (started here through sshd) runs on this host; a zombie does not."""
    for pid in filter(str.isdigit, os.listdir(proc)):
        try:
            with open(os.path.join(proc, pid, "stat")) as f:
                name, _, rest = f.read().partition("(")[2].rpartition(")")
        except OSError:  # it ended while we looked
            continue
        if name in MPI_DAEMONS and rest.split()[:1] != ["Z"]:
            return True
    return False


class Worker:
    """A host whose part mpirun starts from the master: serve SSH until the master is done."""

    def __init__(self, master, script_name, settings):
        self.master, self.script_name, self.settings = master, script_name, settings

    @classmethod
    def from_script(cls, script, master, settings):
        return cls(master, str(script), settings)

    def __str__(self):
        return f"MPI worker for {self.script_name} (mpirun runs on {self.master})"

    def run(self):
        ssh.start_sshd()  # while the master makes its key; sshd reads authorized_keys at each login
        ssh.authorize(ssh.fetch_public_key(self.master, self.settings.key_port, self.settings.host_wait_s))
        log.info("serving SSH for mpirun on %s until it is done", self.master)
        self.wait_for_master()

    def wait_for_master(self):
        """Until the master answers that it is done. The job's own length has no bound here (mpirun
        runs as long as training does); what bounds the wait is the master itself: one that stops
        answering for MASTER_GONE_S fails this host, and a stop request ends the wait at once.
        A master that still resolves but is too busy to answer (its ranks can starve it of CPU for
        longer than that: seen with 10 ranks on 2 CPUs) is alive while mpirun's daemon runs here:
        that daemon ends as soon as it loses mpirun, as sagemaker-training's worker also reads it."""
        port = self.settings.barrier_port
        gone_since = [None]

        def attempt():
            stop = signals.stop_requested()
            if stop:  # nothing runs here to pass it on to: mpirun's processes belong to sshd
                raise JobError(f"{self} was stopped by {signal.Signals(stop).name} before mpirun on {self.master} "
                               "finished", exit_code=128 + stop)
            state = cluster.ask(self.master, port)
            if state == cluster.DONE:
                return True
            if state and state[:1] == cluster.FAILED:  # the master failed and says why
                raise JobError(f"{state[1:].decode('utf-8', 'replace')} (the MPI master {self.master} failed)")
            if state == cluster.RUNNING or (state == b"" and mpi_daemon_running()):
                gone_since[0] = None
            elif gone_since[0] is None:
                gone_since[0] = time.monotonic()
            elif time.monotonic() - gone_since[0] > MASTER_GONE_S:
                how = "did not resolve" if state is None else "did not answer"
                raise JobError(f"the MPI master {self.master} stopped answering before it finished "
                               f"({how} for {MASTER_GONE_S:.0f} s); its own log and failure file hold the cause")
            return None

        waiting.poll(attempt, math.inf, give_up=None,
                     progress=lambda elapsed: f"mpirun on {self.master} still running ({elapsed:.0f} s)",
                     interval_s=cluster.POLL_S, log_every_s=LOG_EVERY_S)
        log.info("the MPI master %s is done", self.master)
