"""mxnet: Horovod for MXNet (Gloo and MPI) in the image, and jobs with distribution={'mpi': ...}
through the shared entrypoint on one host and several (real containers on a private network,
mpirun over SSH from the first host) at the shapes AWS's MXNet toolkit tests: 1x2, 2x1, 2x2 and
5x2 (hosts x processes per host), on CPU. Every rank writes its rank, local rank and size to its own
host's /opt/ml/model and checks an allreduce; the test checks what every rank wrote, host by host."""

import json
import time

import pytest

from smimages.testing.harness import MLJob, run_command, run_job, write_tree

CHECK_MARK = "=== horovodrun --check-build"
PROBE = """
import os, horovod, horovod.mxnet as hvd
torch_ext = os.path.join(os.path.dirname(horovod.__file__), "torch")
print("horovod", horovod.__version__, "mpi", hvd.mpi_built(), "gloo", hvd.gloo_built(),
      "torch extension", any(n.startswith("mpi_lib") for n in os.listdir(torch_ext)))
"""


def test_horovod_is_built_with_mxnet_gloo_and_mpi(image):
    code, out = run_command(image, ["bash", "-c", f"python -c '{PROBE}' && echo {CHECK_MARK} && horovodrun --check-build"])
    assert code == 0, out
    probe, check = out.split(CHECK_MARK)
    assert "horovod 0.28.1 mpi True gloo True torch extension False" in probe, probe
    for built in ("MXNet", "MPI", "Gloo"):
        assert f"[X] {built}" in check, check
    # Horovod's check lists PyTorch whenever horovod.torch imports, and it does without its
    # extension (its runner needs it): no torch extension was built (the probe above).
    assert "[ ] TensorFlow" in check and "[ ] NCCL" in check, check


RANKS = """
import json, os
import mxnet as mx
import horovod.mxnet as hvd

hvd.init()
rank, size = hvd.rank(), hvd.size()
# Each rank gives rank + 1: the sum is size * (size + 1) / 2 on every rank.
total = hvd.allreduce(mx.nd.full((3,), rank + 1), op=hvd.Sum, name="ranks").asnumpy().tolist()
expected = size * (size + 1) / 2
assert total == [expected] * 3, (rank, total, expected)
report = {"rank": rank, "local_rank": hvd.local_rank(), "size": size, "local_size": hvd.local_size(),
          "cross_rank": hvd.cross_rank(), "cross_size": hvd.cross_size(), "mpi": hvd.mpi_enabled(),
          "allreduce": total}
with open(os.path.join(os.environ["SM_MODEL_DIR"], f"rank-{rank}.json"), "w") as f:
    json.dump(report, f)
print(f"rank {rank} of {size} (local {hvd.local_rank()}): allreduce {total[0]:g}", flush=True)
"""


@pytest.mark.parametrize("hosts,nproc", [(1, 2), (2, 1), (2, 2), (5, 2)], ids=["1x2", "2x1", "2x2", "5x2"])
def test_horovod_for_mxnet_over_mpi_every_rank_reports_and_allreduces(image, tmp_path, hosts, nproc):
    names = tuple(f"algo-{i + 1}" for i in range(hosts))
    job = MLJob(tmp_path / "ml", hosts=names, hyperparameters={
        "sagemaker_program": "ranks.py", "sagemaker_submit_directory": "/opt/ml/code",
        "sagemaker_mpi_enabled": "true", "sagemaker_mpi_num_of_processes_per_host": nproc,
        "sagemaker_mpi_custom_mpi_options": "-x OMP_NUM_THREADS=1"})
    for host in names:
        write_tree(job.tree(host) / "code", {"ranks.py": RANKS})

    started = time.monotonic()
    results = run_job(image, job, timeout_s=300)
    elapsed = time.monotonic() - started
    for r in results:
        assert r.exit_code == 0, "\n".join(f"--- {x.host}\n{x.logs[-4000:]}" for x in results)
        r.ok()
    size = hosts * nproc
    master = results[0]
    assert "mpirun" in master.logs and f"-np {size}" in master.logs, master.logs[-4000:]
    for worker in results[1:]:
        assert "the MPI master algo-1 is done" in worker.logs, worker.logs[-4000:]

    seen = set()
    for index, r in enumerate(results):  # --map-by slot: ranks nproc*i .. nproc*(i+1)-1 on algo-(i+1)
        reports = [json.loads(p.read_text()) for p in sorted(r.model.glob("rank-*.json"))]
        assert sorted(x["rank"] for x in reports) == list(range(index * nproc, (index + 1) * nproc)), (r.host, reports)
        assert sorted(x["local_rank"] for x in reports) == list(range(nproc)), (r.host, reports)
        for x in reports:
            assert x["local_rank"] == x["rank"] % nproc and x["local_size"] == nproc, x
            assert x["size"] == size and x["cross_size"] == hosts and x["cross_rank"] == index, x
            assert x["mpi"] is True and x["allreduce"] == [size * (size + 1) / 2] * 3, x
            seen.add(x["rank"])
    assert seen == set(range(size))
    print(f"horovod for mxnet {hosts}x{nproc}: {size} ranks reported in {elapsed:.1f} s")
