"""pytorch-horovod: the MNIST examples through the shared entrypoint, on one host and on two hosts
on a private network, in every `distribution` shape the SDK's PyTorch estimator sends. Horovod's
own jobs run on every variant under test (each builds Horovod its own way); the entrypoint's paths
that do not touch Horovod run once (`one_image`)."""

import json

import pytest

from smimages.testing.harness import MLJob, run_command, run_job, write_tree
from smimages.testing.pytorch_mnist import ACCURACY, channels, digests, make_mnist, put_code

TWO = ("algo-1", "algo-2")
MPI = {"sagemaker_mpi_enabled": "true", "sagemaker_mpi_custom_mpi_options": "-x NCCL_DEBUG=WARN"}
# Rank 0 saves after the other host is done: local mode must not stop it first.
LATE_SAVER = """
import os, runpy, time
runpy.run_path("mnist.py", run_name="__main__")
if os.environ.get("RANK", os.environ.get("OMPI_COMM_WORLD_RANK")) == "0":
    time.sleep(5)
    open(os.path.join(os.environ["SM_MODEL_DIR"], "late.txt"), "w").write("written after the others were done")
"""


@pytest.fixture(scope="session")
def mnist(tmp_path_factory):
    return make_mnist(tmp_path_factory.mktemp("mnist"))


def hyperparameters(program="mnist.py", **extra):
    return {"sagemaker_program": program, "sagemaker_submit_directory": "/opt/ml/code",
            "epochs": 1, "lr": 0.05, "batch-size": 32, **extra}


def ok(results):
    for r in results:
        assert r.exit_code == 0, "\n".join(f"--- {x.host}\n{x.logs[-6000:]}" for x in results)
        r.ok()


def test_one_host_horovod_job_saves_the_model_and_logs_test_accuracy(image, mnist, tmp_path):
    job = MLJob(tmp_path / "ml", channels=channels(mnist),
                hyperparameters=hyperparameters(**MPI, sagemaker_mpi_num_of_processes_per_host=2))
    put_code(job, "pytorch-mnist-horovod")
    [r] = run_job(image, job)
    ok([r])
    assert (r.model / "model.pth").stat().st_size > 10_000
    assert "horovod: 2 process(es), mpi=True" in r.logs and "device cpu" in r.logs  # gpu variant too
    accuracy = float(ACCURACY.search(r.logs).group(1))
    assert json.loads((r.model / "metrics.json").read_text())["test_accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert len(set(digests(r.logs).values())) == 1 and sorted(digests(r.logs)) == [0, 1]


def test_two_hosts_horovod_over_mpi_end_with_identical_weights(image, mnist, tmp_path):
    job = MLJob(tmp_path / "ml", hosts=TWO, channels=channels(mnist), hyperparameters=hyperparameters(**MPI))
    put_code(job, "pytorch-mnist-horovod")
    master, worker = run_job(image, job, timeout_s=240, stop_all_when_one_exits=True)
    ok([master, worker])
    ranks = digests(master.logs)  # mpirun gathers every rank's output on the master
    assert sorted(ranks) == [0, 1] and ranks[0] == ranks[1], master.logs[-4000:]
    assert "horovod: 2 process(es)" in master.logs and ACCURACY.search(master.logs)
    assert (master.model / "model.pth").exists() and not (worker.model / "model.pth").exists()
    assert "the MPI master algo-1 is done" in worker.logs


def test_two_hosts_gloo_lose_nothing_the_master_writes_after_the_worker_is_done(one_image, mnist, tmp_path):
    job = MLJob(tmp_path / "ml", hosts=TWO, channels=channels(mnist),
                hyperparameters=hyperparameters("late_saver.py", backend="gloo"))
    put_code(job, "pytorch-mnist-ddp", {"late_saver.py": LATE_SAVER})
    master, worker = run_job(one_image, job, timeout_s=240, stop_all_when_one_exits=True)
    ok([master, worker])
    assert "world size 2, backend gloo" in master.logs
    assert digests(master.logs)[0] == digests(worker.logs)[1]
    assert (master.model / "model.pth").exists() and not (worker.model / "model.pth").exists()
    assert (master.model / "late.txt").exists(), master.logs[-3000:]
    assert "waiting for algo-1 to finish" in worker.logs


def test_two_hosts_torch_distributed_runs_torchrun_on_each(one_image, mnist, tmp_path):
    job = MLJob(tmp_path / "ml", hosts=TWO, channels=channels(mnist),
                hyperparameters=hyperparameters(sagemaker_torch_distributed_enabled="true"))
    put_code(job, "pytorch-mnist-ddp")
    master, worker = run_job(one_image, job, timeout_s=120)
    ok([master, worker])
    assert "torchrun_agent" in master.logs and "world size 2, backend gloo" in master.logs
    assert digests(master.logs)[0] == digests(worker.logs)[1]
    assert (master.model / "model.pth").exists() and not (worker.model / "model.pth").exists()


# torchrun's exit barrier on torch's own store, the agent on node 1 arriving last: the case where
# node 0's agent could leave (closing the store) before node 1 had its answer (pytorch#69520).
EXIT_BARRIER = """
import multiprocessing, time
from datetime import timedelta
import torch.distributed as dist
import torch.distributed.elastic.utils.store as store_util
from torch.distributed.elastic.agent.server import api
from sm_entrypoint.distributed import torchrun_agent

def agent(node_rank, answers):
    torchrun_agent.install(hosts_store=node_rank == 0)
    store = dist.TCPStore("127.0.0.1", 29531, 2, node_rank == 0, timeout=timedelta(seconds=30))
    time.sleep(0.5 * node_rank)
    store_util.barrier(store, 2, api._TERMINAL_STATE_SYNC_ID, barrier_timeout=30)
    if node_rank == 0:  # what node 0's agent knows as it leaves: who else has left the barrier
        answers.put(store.add(api._TERMINAL_STATE_SYNC_ID + torchrun_agent.DEPARTED, 0))

answers = multiprocessing.get_context("fork").Queue()
agents = [multiprocessing.get_context("fork").Process(target=agent, args=(r, answers)) for r in (0, 1)]
for a in agents: a.start()
for a in agents: a.join(60)
print("exit codes", [a.exitcode for a in agents], "departed before node 0 left:", answers.get(timeout=5))
"""


def test_the_store_host_leaves_torchruns_exit_barrier_last(one_image):
    code, logs = run_command(one_image, ["python3", "-c", EXIT_BARRIER], timeout_s=90)
    assert code == 0 and "exit codes [0, 0] departed before node 0 left: 2" in logs, logs


@pytest.mark.expect_log_errors("the failure under test")
@pytest.mark.parametrize("started", ["algo-1", "algo-2"])
def test_an_mpi_host_alone_fails_with_a_cause_within_bounds(one_image, mnist, tmp_path, started):
    job = MLJob(tmp_path / "ml", hosts=TWO, channels=channels(mnist), hyperparameters=hyperparameters(**MPI),
                env={"SM_ENTRYPOINT_HOST_WAIT_SECONDS": "5"})
    put_code(job, "pytorch-mnist-horovod")
    [r] = run_job(one_image, job, timeout_s=60, start_hosts=[started])
    assert not r.timed_out and r.exit_code != 0
    other = "algo-2" if started == "algo-1" else "algo-1"
    assert r.failure_first_line.startswith(f"host(s) {other} never resolved within 5 s")


# Rank 0 freezes the master's entrypoint (mpirun's parent) for longer than a worker's bound on a
# master that does not answer (MASTER_GONE_S, 30 s): as ranks that starve it of CPU can.
FREEZE_MASTER = """
import os, signal, time
if os.environ["OMPI_COMM_WORLD_RANK"] == "0":
    def parent(pid):
        with open(f"/proc/{pid}/stat") as f:
            name, _, rest = f.read().partition("(")[2].rpartition(")")
        return name, int(rest.split()[1])
    name, entrypoint = parent(os.getppid())
    assert name == "mpirun", name
    os.kill(entrypoint, signal.SIGSTOP)
    time.sleep(40)
    os.kill(entrypoint, signal.SIGCONT)
# one write: unbuffered, print() writes each word apart, and mpirun tags each read it makes
os.write(1, f"rank {os.environ['OMPI_COMM_WORLD_RANK']} done\\n".encode())
"""


def test_a_master_too_busy_to_answer_fails_no_worker_while_mpirun_runs(one_image, tmp_path):
    job = MLJob(tmp_path / "ml", hosts=TWO, hyperparameters={
        "sagemaker_program": "freeze.py", "sagemaker_submit_directory": "/opt/ml/code", **MPI,
        "sagemaker_mpi_num_of_processes_per_host": 1})
    for host in TWO:
        write_tree(job.tree(host) / "code", {"freeze.py": FREEZE_MASTER})
    results = run_job(one_image, job, timeout_s=180)
    ok(results)
    assert "the MPI master algo-1 is done" in results[1].logs, results[1].logs[-4000:]
    assert "rank 1 done" in results[0].logs and "rank 0 done" in results[0].logs


AWS_STYLE = """
import json, os
import torch, torchvision
from sagemaker_training import environment

env = environment.Environment()  # what scripts written for AWS's PyTorch images read
assert env.current_host == "algo-1" and env.hosts == ["algo-1"], (env.current_host, env.hosts)
assert env.num_gpus == torch.cuda.device_count() == 0
assert env.channel_input_dirs["train"] == os.environ["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
assert env.hyperparameters["epochs"] == json.loads(os.environ["SM_HPS"])["epochs"] == 1
with open(os.path.join(env.model_dir, "env.json"), "w") as f:
    json.dump({"torchvision": torchvision.__version__, "module_dir": env.module_dir}, f)
"""


def test_a_script_written_for_aws_pytorch_images_runs_unchanged(one_image, mnist, tmp_path):
    job = MLJob(tmp_path / "ml", channels=channels(mnist), hyperparameters=hyperparameters("aws_style.py"))
    put_code(job, "pytorch-mnist-ddp", {"aws_style.py": AWS_STYLE})
    [r] = run_job(one_image, job)
    ok([r])
    assert json.loads((r.model / "env.json").read_text())["torchvision"].startswith("0.28.0")
