"""What the entrypoint runs for each `distribution` the SDK's PyTorch estimator sends (no Docker)."""

import json
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest
from sm_entrypoint import cluster, distributed
from sm_entrypoint.distributed import mpi, rendezvous, ssh, torchrun
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
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
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
