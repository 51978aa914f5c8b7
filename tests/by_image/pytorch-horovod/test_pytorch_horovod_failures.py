"""pytorch-horovod: a distributed job whose rank 1 raises ends with a failure file that leads with
that rank's own error and names the rank and its host, whichever launcher ran it (mpirun,
torchrun, or the script itself on each host with MASTER_ADDR/RANK)."""

from smimages.testing.harness import MLJob, run_job, write_tree
from smimages.testing.mpi_state import without_ssh_state

TWO = ("algo-1", "algo-2")
ERROR = "ValueError: learning rate must be positive"
HOROVOD_RANK_1_RAISES = """
import horovod.torch as hvd
import torch

hvd.init()
hvd.allreduce(torch.ones(1), name="warm-up")
if hvd.rank() == 1:
    raise ValueError("learning rate must be positive")
hvd.allreduce(torch.ones(1), name="never")  # rank 0 waits here until mpirun ends it
"""
TORCH_RANK_1_RAISES = """
import time
import torch.distributed as dist

dist.init_process_group("gloo")
dist.barrier()
if dist.get_rank() == 1:
    raise ValueError("learning rate must be positive")
time.sleep(90)  # rank 0 outlives rank 1: the test stops it once algo-2 has exited
"""


def job_of(tmp_path, script, **distribution):
    job = MLJob(tmp_path / "ml", hosts=TWO, hyperparameters={
        "sagemaker_program": "fail.py", "sagemaker_submit_directory": "/opt/ml/code", **distribution})
    for host in TWO:
        write_tree(job.tree(host) / "code", {"fail.py": script})
    return job


def test_a_failing_horovod_rank_error_is_the_first_line_on_the_first_host(one_image, tmp_path):
    job = job_of(tmp_path, HOROVOD_RANK_1_RAISES, sagemaker_mpi_enabled="true")
    master, _ = run_job(one_image, job, timeout_s=180, stop_all_when_one_exits=True)
    cause = without_ssh_state(master).cause(1)
    assert cause == f"user script fail.py failed on rank 1 (host algo-2): {ERROR} (mpirun exited with code 1)"
    rank_part, mpirun_part = master.failure.split("mpirun's last stderr lines:")
    assert "rank 1 (host algo-2), its last stderr lines:" in rank_part
    assert 'raise ValueError("learning rate must be positive")' in rank_part
    assert "Process name: [[" in mpirun_part  # mpirun's own summary is still there


def test_a_failing_torchrun_rank_error_leads_on_its_host(one_image, tmp_path):
    job = job_of(tmp_path, TORCH_RANK_1_RAISES, sagemaker_torch_distributed_enabled="true")
    _, worker = run_job(one_image, job, timeout_s=180, stop_all_when_one_exits=True)
    assert worker.cause(1) == f"user script fail.py failed on rank 1 (host algo-2): {ERROR} (torchrun exited with code 1)"
    assert "Root Cause (first observed failure)" in worker.failure.split("torchrun's last stderr lines:")[1]


def test_a_failing_rank_of_a_plain_rendezvous_leads_with_its_error(one_image, tmp_path):
    job = job_of(tmp_path, TORCH_RANK_1_RAISES)
    _, worker = run_job(one_image, job, timeout_s=180, stop_all_when_one_exits=True)
    assert worker.cause(1) == f"user script fail.py failed on rank 1 (host algo-2): {ERROR} (exited with code 1)"
    assert 'raise ValueError("learning rate must be positive")' in worker.failure
