"""pytorch-horovod: scripts written for older PyTorch never call destroy_process_group(). On two
hosts over gloo (a plain job: the image sets MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK), the
rank that finishes first must still end cleanly, run after run: exit 0 on both hosts, `success`.
Without the image's exit handler (sm_pytorch/clean_exit.py) it now and then died with SIGABRT
("terminate called without an active exception", exit 134) after training succeeded.

On demand: CLEAN_EXIT_RUNS=50 repeats each two-host job 50 times (the default, 1: the race made certain,
below, is the regression test; the repeats measure how often the natural race strikes);
CLEAN_EXIT_WAIT=0 passes SM_PYTORCH_EXIT_WAIT_SECONDS=0 to the jobs, which turns the handler off,
to count the failures it prevents (the test then fails, saying how many runs failed and how).
"""

import os

import pytest

from smimages.testing.harness import MLJob, client, run_job, write_tree

TWO = ("algo-1", "algo-2")
RUNS = int(os.environ.get("CLEAN_EXIT_RUNS", "1"))
WAIT = os.environ.get("CLEAN_EXIT_WAIT")  # unset: the image's default

# The classic SageMaker PyTorch MNIST script's shape: the group is formed from SM_HOSTS, the CPU
# case trains a DataParallel model and averages gradients itself (dist.all_reduce of
# p.grad.data; --ddp trains DistributedDataParallel instead), then each host evaluates and saves.
# One host has more to do at the end, so the other is done first; nothing destroys the group.
LEGACY = """
import argparse, json, os, time
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--backend", default="gloo")
p.add_argument("--steps", type=int, default=30)
p.add_argument("--ddp", type=int, default=0)
p.add_argument("--late-rank", type=int, default=0)
p.add_argument("--hosts", type=json.loads, default=os.environ["SM_HOSTS"])
p.add_argument("--current-host", default=os.environ["SM_CURRENT_HOST"])
p.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
args = p.parse_args()


def _average_gradients(model):
    size = float(dist.get_world_size())
    for param in model.parameters():
        dist.all_reduce(param.grad.data, op=dist.ReduceOp.SUM)
        param.grad.data /= size


world_size, rank = len(args.hosts), args.hosts.index(args.current_host)
dist.init_process_group(backend=args.backend, rank=rank, world_size=world_size)
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
model = nn.parallel.DistributedDataParallel(net) if args.ddp else nn.DataParallel(net)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
for step in range(args.steps):
    data, target = torch.randn(32, 64), torch.randint(0, 10, (32,))
    optimizer.zero_grad()
    loss = F.cross_entropy(model(data), target)
    loss.backward()
    if not args.ddp:
        _average_gradients(model)
    optimizer.step()
print(f"rank {rank}/{world_size} trained: loss {loss.item():.4f}", flush=True)
if rank == args.late_rank:
    time.sleep(1)  # evaluates longer while the other host is already done
torch.save(model.module.state_dict(), os.path.join(args.model_dir, "model.pth"))
print(f"rank {rank} saved", flush=True)
"""


def legacy_job(root, ddp, late_rank):
    env = {} if WAIT is None else {"SM_PYTORCH_EXIT_WAIT_SECONDS": WAIT}
    job = MLJob(root, hosts=TWO, env=env,
                hyperparameters={"sagemaker_program": "legacy.py", "sagemaker_submit_directory": "/opt/ml/code",
                                 "ddp": int(ddp), "late-rank": late_rank})
    for host in TWO:
        write_tree(job.tree(host) / "code", {"legacy.py": LEGACY})
    return job


def describe(i, results):
    return "\n".join(f"--- run {i} {r.host}: exit {r.exit_code}, timed out {r.timed_out}, "
                     f"failure {r.failure_first_line!r}\n{r.logs[-2000:]}" for r in results)


@pytest.mark.parametrize("ddp", [False, True], ids=["dataparallel-allreduce", "ddp"])
def test_two_hosts_gloo_without_destroy_process_group_end_cleanly_every_time(one_image, tmp_path, ddp):
    image = one_image
    runs = RUNS if not ddp else max(1, RUNS // 2)  # DDP's own buckets seldom met the abort
    bad, codes = [], []
    for i in range(runs):
        late = i % 2  # either host may be the one that is done first
        results = run_job(image, legacy_job(tmp_path / f"run{i}", ddp, late), timeout_s=150)
        codes.append(tuple(r.exit_code for r in results))
        if any(r.exit_code != 0 or r.timed_out or r.failure or not r.success for r in results):
            bad.append(describe(i, results))
        else:
            assert all(f"rank {rank} saved" in r.logs for rank, r in enumerate(results))
    assert not bad, f"{len(bad)} of {runs} runs failed (exit codes per run: {codes}):\n" + "\n".join(bad[:2])


# The race made certain: a switch interval of 1 s keeps the gloo worker that frees the last
# all-reduce's tensors from the GIL until the script has ended. Two ranks on loopback in one
# container, five times; without the handler most of these pairs abort.
HARSH = """
import sys, torch, torch.distributed as dist
dist.init_process_group(backend="gloo")
sys.setswitchinterval(1.0)
g = torch.ones(1000)
for _ in range(5):
    dist.all_reduce(g.data)
print("rank", dist.get_rank(), "done", flush=True)
"""
PAIRS = """
set -u
fails=0
for i in 1 2 3 4 5; do
  port=$((29600 + i))
  MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=0 python /tmp/harsh.py > /tmp/r0.log 2>&1 & p0=$!
  MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=1 python /tmp/harsh.py > /tmp/r1.log 2>&1 & p1=$!
  wait $p0; c0=$?; wait $p1; c1=$?
  echo "pair $i: $c0 $c1"
  [ "$c0$c1" = 00 ] || { fails=$((fails + 1)); cat /tmp/r0.log /tmp/r1.log; }
done
echo "failed pairs: $fails"
"""


def test_the_exit_race_made_certain_still_ends_cleanly(one_image, tmp_path):
    (tmp_path / "harsh.py").write_text(HARSH)
    (tmp_path / "pairs.sh").write_text(PAIRS)
    env = {} if WAIT is None else {"SM_PYTORCH_EXIT_WAIT_SECONDS": WAIT}
    out = client().containers.run(one_image, ["bash", "/tmp/pairs.sh"], remove=True, stderr=True,
                                  environment=env, volumes={str(tmp_path / "harsh.py"): {"bind": "/tmp/harsh.py"},
                                                            str(tmp_path / "pairs.sh"): {"bind": "/tmp/pairs.sh"}})
    out = out.decode(errors="replace")
    assert "failed pairs: 0" in out, out[-4000:]
    assert "terminate called" not in out, out[-4000:]


# What the handler must leave as it was: exit codes, output, the script's own atexit handlers.
SIDE_EFFECTS = """
import atexit, sys, torch, torch.distributed as dist
dist.init_process_group(backend="gloo", init_method="tcp://127.0.0.1:29599", rank=0, world_size=1)
dist.all_reduce(torch.ones(3).data)
atexit.register(lambda: print("the script's own atexit handler ran", flush=True))
print("argv", sys.argv[1:], "main", __name__, flush=True)
sys.exit(int(sys.argv[1]))
"""


def test_the_exit_handler_keeps_exit_codes_output_and_atexit_handlers(one_image, tmp_path):
    (tmp_path / "s.py").write_text(SIDE_EFFECTS)
    script = ("python /tmp/s.py 0; echo code $?; python /tmp/s.py 3; echo code $?; "
              "python -c 'import torch; raise ValueError(\"bad\")'; echo code $?; "
              "python -c 'import os, sm_pytorch as p; print(open(os.path.join(os.path.dirname("
              "os.path.dirname(p.__file__)), \"sm_pytorch_clean_exit.pth\")).read())'")
    out = client().containers.run(one_image, ["bash", "-c", script], remove=True, stderr=True,
                                  volumes={str(tmp_path / "s.py"): {"bind": "/tmp/s.py"}}).decode()
    assert out.count("argv ['0'] main __main__") == 1 and "argv ['3'] main __main__" in out, out
    assert out.count("the script's own atexit handler ran") == 2, out
    codes = [line.split()[1] for line in out.splitlines() if line.startswith("code ")]
    assert codes == ["0", "3", "1"], out
    assert "ValueError: bad" in out and "sm_pytorch.clean_exit" in out, out
    assert "Exception ignored" not in out and "Traceback" in out, out
