"""What the entrypoint runs for each `distribution` the SDK's PyTorch estimator sends (no Docker)."""

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest
from sm_entrypoint import cluster, distributed
from sm_entrypoint.distributed import mpi, parameter_server, rendezvous, ssh, torchrun
from sm_entrypoint.errors import JobError
from sm_entrypoint.script import Script
from sm_entrypoint.settings import Settings

HOSTS = ["algo-1", "algo-2"]


def env(params=None, current="algo-1", hosts=HOSTS, gpus=0):
    return SimpleNamespace(additional_framework_parameters=params or {}, hosts=hosts, current_host=current,
                           num_gpus=gpus, network_interface_name="eth1")


def settings(barrier_port=7479, host_wait_s=300.0):
    return Settings(base_dir="/opt/ml", host_wait_s=host_wait_s, master_wait_s=3600.0, barrier_port=barrier_port,
                    failure_limit=16384)


def plan_for(script, env):
    return distributed.plan(script, env, settings())


def script():
    return Script("/opt/ml/code/train.py", ["--epochs", "1"], "/opt/ml/code", {"SM_HPS": "{}"})


@pytest.mark.parametrize("value", [True, "true", "True", json.dumps(True), '"true"'])
def test_mpi_enabled_however_the_sdk_encodes_it(value):
    assert isinstance(plan_for(script(), env({"sagemaker_mpi_enabled": value})), mpi.Master)


def test_mpi_master_command_spans_the_hosts_with_processes_per_host_and_custom_options(monkeypatch, tmp_path):
    monkeypatch.setenv("SM_ENTRYPOINT_PYTHON", "/opt/venv/bin/python")
    (tmp_path / "eth1").mkdir()  # the interface resourceconfig.json names, present in the container
    monkeypatch.setattr(distributed, "SYS_NET", str(tmp_path))
    plan = plan_for(script(), env({"sagemaker_mpi_enabled": "true",
                                           "sagemaker_mpi_num_of_processes_per_host": "2",
                                           "sagemaker_mpi_custom_mpi_options": "--mca btl_tcp_if_exclude lo -x FOO=1"}))
    cmd = plan.command()
    assert cmd[0] == "mpirun"
    assert cmd[cmd.index("--host") + 1] == "algo-1:2,algo-2:2" and cmd[cmd.index("-np") + 1] == "4"
    assert cmd[cmd.index("btl_tcp_if_include") + 1] == "eth1"
    assert "btl_tcp_if_exclude" in cmd and "FOO=1" in cmd
    assert cmd[cmd.index("SM_HPS") - 1] == "-x"  # the job's environment reaches every rank
    assert cmd[-4:] == ["/opt/venv/bin/python", "/opt/ml/code/train.py", "--epochs", "1"]


def test_mpi_on_one_host_runs_locally_with_one_process_per_gpu():
    plan = plan_for(script(), env({"sagemaker_mpi_enabled": True}, hosts=["algo-1"], gpus=4))
    cmd = plan.command()
    assert cmd[cmd.index("--host") + 1] == "localhost:4" and cmd[cmd.index("-np") + 1] == "4"


def test_mpi_bad_processes_per_host_is_a_clear_error():
    with pytest.raises(JobError, match="sagemaker_mpi_num_of_processes_per_host must be a positive"):
        plan_for(script(), env({"sagemaker_mpi_enabled": True,
                                        "sagemaker_mpi_num_of_processes_per_host": "zero"}))


def test_mpi_worker_runs_no_script_itself():
    plan = plan_for(script(), env({"sagemaker_mpi_enabled": True}, current="algo-2"))
    assert isinstance(plan, mpi.Worker) and plan.master == "algo-1"


def test_torch_distributed_runs_torchrun_with_this_hosts_rank():
    plan = plan_for(script(), env({"sagemaker_torch_distributed_enabled": "true"}, current="algo-2"))
    assert isinstance(plan, torchrun.Torchrun)
    cmd = plan.command()
    assert cmd[1:3] == ["-m", "sm_entrypoint.distributed.torchrun_agent"]
    assert cmd[cmd.index("--nnodes") + 1] == "2" and cmd[cmd.index("--node_rank") + 1] == "1"
    assert cmd[cmd.index("--master_addr") + 1] == "algo-1"
    assert cmd[-3:] == ["/opt/ml/code/train.py", "--epochs", "1"]


def test_plain_script_gets_the_rendezvous_variables(monkeypatch):
    monkeypatch.delenv("MASTER_PORT", raising=False)
    plan = plan_for(script(), env(current="algo-2"))
    assert isinstance(plan, rendezvous.Rank) and plan.host == "algo-2"
    assert {k: plan.env_vars[k] for k in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")} == {
        "MASTER_ADDR": "algo-1", "MASTER_PORT": "29500", "WORLD_SIZE": "2", "RANK": "1"}
    assert plan.env_vars["SM_HPS"] == "{}"


def test_a_rendezvous_variable_the_job_sets_wins(monkeypatch):
    monkeypatch.setenv("MASTER_PORT", "12345")
    assert plan_for(script(), env()).env_vars["MASTER_PORT"] == "12345"


def test_worker_fails_within_bounds_when_the_master_never_hands_over_its_key():
    start = time.monotonic()
    with pytest.raises(JobError, match="could not get the MPI master no-such-host.invalid's SSH key .* within 1 s"):
        ssh.fetch_public_key("no-such-host.invalid", 7480, timeout_s=1)
    assert time.monotonic() - start < 10


def test_the_key_port_is_the_one_after_the_barrier_port():
    assert settings(barrier_port=9000).key_port == 9001


def test_worker_fails_when_the_master_stops_answering(monkeypatch):
    monkeypatch.setattr(mpi, "MASTER_GONE_S", 0.3)
    monkeypatch.setattr(cluster, "POLL_S", 0.05)
    presence = cluster.Presence(0)
    worker = mpi.Worker("127.0.0.1", "user script train.py", settings(barrier_port=presence.port))
    threading.Timer(0.1, presence.close).start()  # the master's container goes away
    with pytest.raises(JobError, match="the MPI master 127.0.0.1 stopped answering before it finished"):
        worker.wait_for_master()


def test_a_busy_master_is_alive_while_mpiruns_daemon_runs_here(tmp_path, monkeypatch):
    """A master that resolves but does not answer (its ranks starve it of CPU) fails no worker
    whose orted still runs; once the daemon is gone the bound applies again."""
    monkeypatch.setattr(mpi, "MASTER_GONE_S", 0.3)
    monkeypatch.setattr(cluster, "POLL_S", 0.05)
    orted = tmp_path / "orted"
    shutil.copy(shutil.which("sleep"), orted)
    daemon = subprocess.Popen([str(orted), "1.5"])
    threading.Thread(target=daemon.wait, daemon=True).start()  # reaped as sshd reaps it
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))  # resolves; nothing listens there
    worker = mpi.Worker("127.0.0.1", "user script train.py", settings(barrier_port=silent.getsockname()[1]))
    started = time.monotonic()
    with pytest.raises(JobError, match=r"stopped answering before it finished \(did not answer for 0 s\)"):
        worker.wait_for_master()
    assert daemon.poll() is not None and time.monotonic() - started >= 1.5  # not before the daemon ended
    silent.close()


def test_mpi_daemon_running_reads_the_process_table(tmp_path):
    def process(pid, name, state):
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "stat").write_text(f"{pid} ({name}) {state} 1 1 1 0 -1\n")

    for pid, name, state in (("1", "tini", "S"), ("7", "sshd", "S"), ("8", "orted", "Z"), ("9", "my (orted) x", "R")):
        process(pid, name, state)
    (tmp_path / "self").mkdir()
    assert not mpi.mpi_daemon_running(str(tmp_path))  # names are whole; a zombie has ended
    process("42", "orted", "S")
    assert mpi.mpi_daemon_running(str(tmp_path))


def test_worker_finishes_when_the_master_is_done(monkeypatch):
    monkeypatch.setattr(cluster, "POLL_S", 0.05)
    presence = cluster.Presence(0)
    threading.Timer(0.1, presence.done).start()
    mpi.Worker("127.0.0.1", "user script train.py", settings(barrier_port=presence.port)).wait_for_master()
    presence.close()


def test_the_master_hands_its_public_key_to_a_worker():
    served = ssh.serve_public_key("ssh-ed25519 AAAA sm-mpi", 0)
    assert ssh.fetch_public_key("127.0.0.1", served.port, timeout_s=5) == "ssh-ed25519 AAAA sm-mpi"
    served.close()


WAITING_WORKER = """
import os, signal, threading
from sm_entrypoint import cluster, signals
from sm_entrypoint.distributed import mpi
from sm_entrypoint.errors import JobError
from sm_entrypoint.settings import Settings
port = cluster.Presence(0).port  # a master that keeps running
settings = Settings("/opt/ml", 300.0, 3600.0, port, 16384)
cluster.POLL_S = 0.05
threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
try:
    with signals.forwarding():
        mpi.Worker("127.0.0.1", "user script train.py", settings).wait_for_master()
except JobError as e:
    print(e.exit_code, e.cause)
"""


def test_a_stop_request_ends_a_worker_waiting_for_the_master():
    """A worker host runs no process of its own (mpirun's come through sshd): SIGTERM ends its
    wait with 143 and the cause, instead of being swallowed until docker stop kills it."""
    out = subprocess.run([sys.executable, "-c", WAITING_WORKER], capture_output=True, text=True, timeout=30).stdout
    assert out.startswith("143 MPI worker for user script train.py (mpirun runs on 127.0.0.1) was stopped by "
                          "SIGTERM before mpirun on 127.0.0.1 finished"), out


def test_one_host_runs_the_plain_script_with_the_rendezvous_variables():
    plan = plan_for(script(), env(hosts=["algo-1"]))
    assert type(plan) is Script and plan.env_vars["WORLD_SIZE"] == "1"


def test_the_named_network_interface_is_used_when_the_container_has_it(tmp_path):
    for name in ("lo", "eth0", "ethwe"):
        (tmp_path / name).mkdir()
    assert distributed.network_interface("ethwe", str(tmp_path)) == "ethwe"
    assert distributed.network_interface(None, str(tmp_path)) == "eth0"


def test_sdk3_local_modes_ethwe_falls_back_to_an_interface_the_container_has(tmp_path, caplog):
    (tmp_path / "lo").mkdir()
    (tmp_path / "eth1").mkdir()
    assert distributed.network_interface("ethwe", str(tmp_path)) == "eth1"
    assert "network interface ethwe (resourceconfig.json) is not in this container: using eth1" in caplog.text
    (tmp_path / "eth0").mkdir()
    assert distributed.network_interface("ethwe", str(tmp_path)) == "eth0"


# -- parameter_server: MXNet's scheduler and servers beside the script ---------------------------

PS = "sagemaker_parameter_server_enabled"
LOCAL_HOSTS = ["localhost", "127.0.0.1"]  # two names that resolve here, for plans that run


def ps_env(params=None, current="localhost", hosts=LOCAL_HOSTS, hyperparameters=None):
    found = env(params, current, hosts)
    found.hyperparameters = hyperparameters or {}
    return found


def test_parameter_server_runs_the_scheduler_on_the_first_host_and_a_server_on_each():
    first = plan_for(script(), ps_env({PS: True}))
    other = plan_for(script(), ps_env({PS: "true"}, current="127.0.0.1", hyperparameters={"_ps_port": "9000"}))
    assert isinstance(first, parameter_server.ParameterServer)
    assert (first.roles, other.roles) == (["scheduler", "server"], ["server"])
    assert first.command() == script().command()  # the worker is the user's script, unchanged
    assert {k: v for k, v in other.env_vars.items() if k.startswith(("DMLC", "PS_"))} == {
        "DMLC_NUM_WORKER": "2", "DMLC_NUM_SERVER": "2", "DMLC_PS_ROOT_URI": "127.0.0.1",
        "DMLC_PS_ROOT_PORT": "9000", "PS_VERBOSE": "0",
        "DMLC_INTERFACE": distributed.network_interface("eth1")}  # what this machine has
    assert first.env_vars["DMLC_PS_ROOT_PORT"] == "8000" and first.env_vars["SM_HPS"] == "{}"


def test_parameter_server_on_one_host_runs_the_script_alone():
    assert plan_for(script(), ps_env({PS: True}, hosts=["localhost"])).command() == script().command()
    assert not isinstance(plan_for(script(), ps_env({PS: True}, hosts=["localhost"])),
                          parameter_server.ParameterServer)


@pytest.mark.parametrize("params, hyperparameters, message", [
    ({PS: True, "sagemaker_mpi_enabled": True}, {}, "both mpi and parameter_server: choose one"),
    ({PS: True}, {"_ps_port": "eighty"}, "_ps_port must be a TCP port, got 'eighty'"),
])
def test_parameter_server_bad_distribution_is_a_clear_error(params, hyperparameters, message):
    with pytest.raises(JobError, match=message):
        plan_for(script(), ps_env(params, hyperparameters=hyperparameters))


def python_plan(tmp_path, worker_code, role_code, monkeypatch, barrier_port):
    """A ParameterServer whose worker and roles are small Python programs standing in for the
    user's script and MXNet's roles (DMLC_ROLE says which)."""
    (tmp_path / "train.py").write_text(worker_code)
    monkeypatch.setattr(parameter_server, "ROLE_COMMAND", ("-c", role_code))
    plan = plan_for(Script(str(tmp_path / "train.py"), [], str(tmp_path), {}), ps_env({PS: True}))
    plan.barrier_port = barrier_port
    return plan


def test_a_failing_server_ends_the_worker_at_once_with_its_own_cause(tmp_path, monkeypatch):
    peer = cluster.Presence(0)  # the other host answers: only the server's failure ends the job
    role = "import os, sys, time\nif os.environ['DMLC_ROLE'] == 'server':\n    time.sleep(0.5)\n" \
           "    sys.exit('ps-lite: lost the connection to the scheduler')\ntime.sleep(60)\n"
    plan = python_plan(tmp_path, "import time\ntime.sleep(60)\n", role, monkeypatch, peer.port)
    started = time.monotonic()
    with pytest.raises(JobError) as failed:
        plan.run()
    peer.close()
    assert failed.value.cause == ("MXNet's parameter-server server (DMLC_ROLE=server) on localhost exited with "
                                  "code 1: ps-lite: lost the connection to the scheduler")
    assert time.monotonic() - started < 30  # the worker (60 s) was ended, not waited for


def test_a_host_that_vanishes_fails_the_worker_within_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(parameter_server, "PEER_GONE_S", 1.0)
    monkeypatch.setattr(parameter_server, "PEERS_EVERY_S", 0.2)
    plan = python_plan(tmp_path, "import time\ntime.sleep(60)\n", "import time\ntime.sleep(60)\n", monkeypatch,
                       barrier_port=1)  # nothing answers there
    with pytest.raises(JobError, match="host 127.0.0.1 stopped answering for 1 s while the parameter-server "
                                       "worker on localhost trained"):
        plan.run()


def test_the_worker_succeeds_once_its_roles_end_with_the_job(tmp_path, monkeypatch):
    peer = cluster.Presence(0)
    peer.done()
    marker = tmp_path / "roles"
    role = f"import os, time\ntime.sleep(1)\nopen({str(marker)!r} + os.environ['DMLC_ROLE'], 'w').close()\n"
    worker = "import os\nassert os.environ['DMLC_ROLE'] == 'worker' and os.environ['DMLC_NUM_WORKER'] == '2'\n"
    python_plan(tmp_path, worker, role, monkeypatch, peer.port).run()
    peer.close()
    assert sorted(p.name for p in tmp_path.glob("roles*")) == ["rolesscheduler", "rolesserver"]


def test_a_failing_worker_is_told_by_its_own_error_and_host(tmp_path, monkeypatch):
    peer = cluster.Presence(0)
    plan = python_plan(tmp_path, "raise ValueError('kvstore dist_sync needs a batch size')\n",
                       "import time\ntime.sleep(60)\n", monkeypatch, peer.port)
    with pytest.raises(JobError) as failed:
        plan.run()
    peer.close()
    assert failed.value.cause.startswith("user script train.py failed on rank 0 (host localhost): "
                                         "ValueError: kvstore dist_sync needs a batch size")


class CountingStore:
    """What check_out uses of a TCPStore: add(key, n) -> the new count, shared between threads."""

    def __init__(self):
        self.counts, self.lock = {}, threading.Lock()

    def add(self, key, n):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n
            return self.counts[key]


def test_the_store_host_leaves_the_exit_barrier_after_every_other_agent():
    from sm_entrypoint.distributed import torchrun_agent

    store = CountingStore()
    late = threading.Timer(0.3, torchrun_agent.check_out, (store, 3, "end/", False))
    torchrun_agent.check_out(store, 3, "end/", hosts_store=False)  # another agent: checks out, leaves
    late.start()
    started = time.monotonic()
    assert torchrun_agent.check_out(store, 3, "end/", hosts_store=True) == 3
    assert time.monotonic() - started >= 0.25  # it waited for the late one


def test_the_store_host_leaves_anyway_when_an_agent_never_checks_out(capsys):
    from sm_entrypoint.distributed import torchrun_agent

    started = time.monotonic()
    assert torchrun_agent.check_out(CountingStore(), 2, "end/", hosts_store=True, wait_s=0.2) == 1
    assert time.monotonic() - started < 2
    assert "1 of 2 agent(s) never left the exit barrier within 0.2 s" in capsys.readouterr().err


def barrier_of_torch_2_2(store, rank, world_size, key_prefix, barrier_timeout=300):
    store.add("barrier", 1)


def barrier_of_torch_2_13(store, world_size, key_prefix, barrier_timeout=300, rank=None):
    store.add("barrier", 1)


@pytest.mark.parametrize("barrier, call", [  # how each torch's agent calls its exit barrier
    (barrier_of_torch_2_2, lambda b, store: b(store, 0, 1, key_prefix="end/", barrier_timeout=5)),
    (barrier_of_torch_2_13, lambda b, store: b(store=store, world_size=1, key_prefix="end/", barrier_timeout=5)),
])
def test_the_exit_barrier_is_followed_by_a_check_out_whatever_torchs_signature(barrier, call):
    from sm_entrypoint.distributed import torchrun_agent

    store = CountingStore()
    call(torchrun_agent.after_exit_barrier(barrier, "end/", hosts_store=True), store)
    assert store.counts == {"barrier": 1, "end/" + torchrun_agent.DEPARTED: 1}
    call(torchrun_agent.after_exit_barrier(barrier, "other/", hosts_store=True), store)
    assert store.counts == {"barrier": 2, "end/" + torchrun_agent.DEPARTED: 1}  # not the exit barrier


def hetero(current, params, groups=("train", "train", "data"), distribution=("algo-1", "algo-2")):
    """sagemaker-training's Environment of a 3-host, 2-group cluster: the attributes plan reads."""
    hosts = ["algo-1", "algo-2", "algo-3"]
    e = env(params, current=current, hosts=hosts)
    e.is_hetero, e.distribution_hosts = True, list(distribution)
    e.current_instance_group = groups[hosts.index(current)]
    e.distribution_instance_groups = ["train"] if distribution else []
    return e


def test_a_heterogeneous_cluster_launches_over_its_distribution_hosts_only():
    mpi_params = {"sagemaker_mpi_enabled": True, "sagemaker_distribution_instance_groups": ["train"]}
    master = plan_for(script(), hetero("algo-1", mpi_params))
    assert isinstance(master, mpi.Master) and master.hosts == ["algo-1", "algo-2"]
    assert isinstance(plan_for(script(), hetero("algo-2", mpi_params)), mpi.Worker)
    torch_params = {"sagemaker_torch_distributed_enabled": "true"}
    cmd = plan_for(script(), hetero("algo-2", torch_params)).command()
    assert cmd[cmd.index("--nnodes") + 1] == "2" and cmd[cmd.index("--master_addr") + 1] == "algo-1"


def test_a_host_outside_the_distribution_groups_runs_the_script_once_as_a_plain_process():
    plain = plan_for(script(), hetero("algo-3", {"sagemaker_mpi_enabled": True}))
    assert type(plain) is Script and plain.command()[-3:] == ["/opt/ml/code/train.py", "--epochs", "1"]
    # no distribution at all: every host runs its script alone, as sagemaker-training's trainer does
    assert type(plan_for(script(), hetero("algo-1", {}, distribution=()))) is Script
