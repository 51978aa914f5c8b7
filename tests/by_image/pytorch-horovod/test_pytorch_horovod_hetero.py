"""pytorch-horovod: a heterogeneous cluster (two instance groups) with the distribution over one of
them, as sagemaker-training defines it: Horovod (mpirun) and torchrun span exactly that group's
hosts, the other host runs the script once with its own variables, and a rank that raises fails
the job on every host, cause first."""

import json

import pytest

from smimages.testing.harness import MLJob, run_job, write_tree
from smimages.testing.mpi_state import without_ssh_state

HOSTS = ("algo-1", "algo-2", "algo-3")
GROUPS = {"train": ["algo-1", "algo-2"], "data": ["algo-3"]}
ERROR = "ValueError: learning rate must be positive"
# What a heterogeneous job's script does: the distribution group trains, the other group prepares data.
SCRIPT = """
import json, os, sys

group, launcher = os.environ["SM_CURRENT_INSTANCE_GROUP"], sys.argv[sys.argv.index("--launcher") + 1]
size = rank = None
if group == "train":
    if launcher == "mpi":
        import horovod.torch as hvd
        hvd.init()
        size, rank = hvd.size(), hvd.rank()
    else:
        import torch.distributed as dist
        dist.init_process_group("gloo")
        size, rank = dist.get_world_size(), dist.get_rank()
    if "--fail" in sys.argv and rank == 1:
        raise ValueError("learning rate must be positive")
name = f"rank-{rank}" if rank is not None else "plain"
with open(os.path.join(os.environ["SM_MODEL_DIR"], name + ".json"), "w") as f:
    json.dump({"group": group, "size": size, "rank": rank}, f)
"""
LAUNCHERS = {"mpi": {"sagemaker_mpi_enabled": "true", "sagemaker_mpi_num_of_processes_per_host": 1},
             "torchrun": {"sagemaker_torch_distributed_enabled": "true"}}


def hetero_job(tmp_path, launcher, fail=False):
    hyperparameters = {"sagemaker_program": "hetero.py", "sagemaker_submit_directory": "/opt/ml/code",
                       "sagemaker_distribution_instance_groups": json.dumps(["train"]), "launcher": launcher,
                       **LAUNCHERS[launcher]}
    if fail:
        hyperparameters["fail"] = ""
    job = MLJob(tmp_path / "ml", hosts=HOSTS, instance_groups=GROUPS, hyperparameters=hyperparameters)
    for host in HOSTS:
        write_tree(job.tree(host) / "code", {"hetero.py": SCRIPT})
    return job


def written(result):
    return {p.name: json.loads(p.read_text()) for p in sorted(result.model.glob("*.json"))}


@pytest.mark.parametrize("launcher", ["mpi", "torchrun"])
def test_the_distribution_group_alone_launches_and_the_other_host_runs_once(one_image, tmp_path, launcher):
    results = run_job(one_image, hetero_job(tmp_path, launcher), timeout_s=240)
    for r in results:
        r.ok()
    first, second, plain = results
    assert written(first) == {"rank-0.json": {"group": "train", "size": 2, "rank": 0}}
    assert written(second) == {"rank-1.json": {"group": "train", "size": 2, "rank": 1}}
    assert written(plain) == {"plain.json": {"group": "data", "size": None, "rank": None}}
    assert "instance group data is not among the distribution groups ['train']" in plain.logs


@pytest.mark.expect_log_errors("a rank that raises, on purpose")
def test_a_rank_that_raises_fails_the_job_on_every_host_cause_first(one_image, tmp_path):
    """Horovod: mpirun on the first host ends the group; the other hosts read its cause."""
    first, second, plain = run_job(one_image, hetero_job(tmp_path, "mpi", fail=True), timeout_s=240)
    cause = without_ssh_state(first).cause()
    assert cause.startswith(f"user script hetero.py failed on rank 1 (host algo-2): {ERROR}")
    assert without_ssh_state(second).cause() == f"{cause} (the MPI master algo-1 failed)"
    assert plain.cause() == f"{cause} (host algo-1 failed; the work on algo-3 succeeded)"
