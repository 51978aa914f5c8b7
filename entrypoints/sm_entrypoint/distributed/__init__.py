"""One user script on several processes or hosts, as the SageMaker SDK's PyTorch estimator asks
with its `distribution` option (sent as sagemaker_* hyperparameters):

- {"mpi": {"enabled": True, "processes_per_host": N, "custom_mpi_options": "..."}}: the first
  host runs mpirun over every host through SSH (mpi.py); the others serve SSH until it is done.
- {"torch_distributed": {"enabled": True}}: torchrun on every host (torchrun.py).
- {"parameter_server": {"enabled": True}} (the MXNet estimator's): MXNet's scheduler and servers
  beside the script on every host (parameter_server.py).
- nothing: the script on every host, with MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK set
  (rendezvous.py), as AWS's PyTorch images set them.

A heterogeneous cluster (several instance groups in resourceconfig.json) launches over the hosts of
the groups the hyperparameter sagemaker_distribution_instance_groups names (by default, as
sagemaker-training computes it: the current group when a distribution is enabled, else none), its
master the first of them; every other host runs the script once, as a plain process, with its own
host's variables (sagemaker-training's trainer does the same).
"""

import json
import logging
import os

from ..errors import JobError
from . import mpi, parameter_server, rendezvous, torchrun

log = logging.getLogger("sm_entrypoint")

MPI_ENABLED = "sagemaker_mpi_enabled"
MPI_PROCESSES_PER_HOST = "sagemaker_mpi_num_of_processes_per_host"
MPI_CUSTOM_OPTIONS = "sagemaker_mpi_custom_mpi_options"
TORCH_DISTRIBUTED_ENABLED = "sagemaker_torch_distributed_enabled"
SYS_NET = "/sys/class/net"  # one entry per network interface of this container


def flag(value):
    """A hyperparameter's truth, however the SDK encoded it (True, "true", "\"true\"")."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    return value is True or str(value).strip().lower() == "true"


def processes_per_host(env, params):
    """sagemaker_mpi_num_of_processes_per_host, else one per GPU, else one."""
    raw = params.get(MPI_PROCESSES_PER_HOST)
    if raw not in (None, ""):
        return rendezvous.positive_int(raw, MPI_PROCESSES_PER_HOST)
    return max(int(env.num_gpus or 0), 1)


def network_interface(named, sys_net=None):
    """The interface the hosts talk over (mpirun's, NCCL's): the one resourceconfig.json names when
    this container has it. SDK 3.x local mode names SageMaker's own, `ethwe`, which a local
    container lacks: then eth0, else the first one that is not loopback, and the log says so."""
    named = str(named or "").strip() or "eth0"
    try:
        present = sorted(os.listdir(sys_net or SYS_NET))
    except OSError:
        return named
    if named in present:
        return named
    fallback = "eth0" if "eth0" in present else next((n for n in present if n != "lo"), named)
    log.warning("network interface %s (resourceconfig.json) is not in this container: using %s", named, fallback)
    return fallback


def launch_hosts(env):
    """The hosts the distributed launch spans, in order (the first is its master), or [] when this
    host takes no part: every host, unless the cluster is heterogeneous (sagemaker-training's own
    distribution_hosts then)."""
    hosts = list(env.hosts)
    if not getattr(env, "is_hetero", False):
        return hosts
    chosen = [h for h in env.distribution_hosts if h in hosts]
    return chosen if env.current_host in chosen else []


def plan(script, env, settings):
    """The Script to run on this host, given the job's distribution hyperparameters; `settings`
    (sm_entrypoint.settings.Settings) gives MPI its ports and waits."""
    params = dict(env.additional_framework_parameters or {})
    hosts, current = launch_hosts(env), env.current_host
    if not hosts:
        log.info("heterogeneous cluster: instance group %s is not among the distribution groups %s: the script "
                 "runs here once, as a plain process", env.current_instance_group, env.distribution_instance_groups)
        return script
    interface = network_interface(env.network_interface_name) if len(hosts) > 1 else env.network_interface_name
    if flag(params.get(parameter_server.ENABLED)):
        if flag(params.get(MPI_ENABLED)):
            raise JobError("distribution asks for both mpi and parameter_server: choose one")
        if len(hosts) > 1:
            log.info("distribution: parameter_server, a scheduler on %s and a server beside the worker on each "
                     "of %d host(s)", hosts[0], len(hosts))
            return parameter_server.ParameterServer.from_script(script, hosts, current, env.hyperparameters,
                                                                interface, settings.barrier_port)
        log.info("distribution: parameter_server on one host: the script runs alone (kvstore 'local')")
    if flag(params.get(MPI_ENABLED)):
        nproc = processes_per_host(env, params)
        options = params.get(MPI_CUSTOM_OPTIONS) or ""
        log.info("distribution: mpi, %d process(es) on each of %d host(s)", nproc, len(hosts))
        if current == hosts[0]:
            return mpi.Master.from_script(script, hosts, nproc, options, interface, settings)
        return mpi.Worker.from_script(script, hosts[0], settings)
    if flag(params.get(TORCH_DISTRIBUTED_ENABLED)):
        nproc = max(int(env.num_gpus or 0), 1)
        log.info("distribution: torch_distributed, torchrun with %d process(es) on each of %d host(s)",
                 nproc, len(hosts))
        return torchrun.Torchrun.from_script(script, hosts, current, nproc)
    return rendezvous.with_rendezvous(script, hosts, current, interface)
