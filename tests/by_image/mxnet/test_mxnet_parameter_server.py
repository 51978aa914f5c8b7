"""MXNet's parameter server on two hosts (distribution={'parameter_server': {'enabled': True}}),
as AWS's MXNet images ran it: the scheduler on the first host, a server on each, the script as the
worker on each with kvstore='dist_sync'. A killed server or scheduler ends the job with its cause."""

import json
import threading
import time

import numpy as np
import pytest

from smimages.testing.harness import MLJob, run_job, write_tree

TWO = ("algo-1", "algo-2")
PS = {"sagemaker_program": "train.py", "sagemaker_submit_directory": "/opt/ml/code",
      "sagemaker_parameter_server_enabled": "true"}

# A linear regression trained with dist_sync: each worker takes its own shard of 400 samples (by
# its kvstore rank), and the gradients of both go through the servers.
DIST_SYNC = """
import json, os, time
import mxnet as mx
import numpy as np
from sagemaker_mxnet_container.training_utils import save, scheduler_host

hosts, current = json.loads(os.environ["SM_HOSTS"]), os.environ["SM_CURRENT_HOST"]
kv = mx.kv.create("dist_sync" if len(hosts) > 1 else "local")
rng = np.random.RandomState(0)
x = rng.rand(400, 10).astype("float32")
y = (x @ rng.rand(10, 1)).ravel().astype("float32")
shard = np.arange(len(x))[kv.rank::kv.num_workers]
batches = mx.io.NDArrayIter(x[shard], y[shard], batch_size=20, label_name="label")
net = mx.sym.LinearRegressionOutput(mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=1, name="fc"),
                                    label=mx.sym.var("label"), name="out")
module = mx.mod.Module(net, label_names=["label"], context=mx.cpu())
pause = float(os.environ.get("STEP_PAUSE_S", "0"))

def step(param):
    print(f"epoch {param.epoch} batch {param.nbatch}", flush=True)
    time.sleep(pause)

module.fit(batches, num_epoch=int(os.environ.get("EPOCHS", "3")), kvstore=kv, optimizer="sgd",
           optimizer_params={"learning_rate": 0.1}, initializer=mx.init.Xavier(), batch_end_callback=step)
params = {k: v.asnumpy() for k, v in module.get_params()[0].items()}
model_dir = os.environ["SM_MODEL_DIR"]
np.savez(os.path.join(model_dir, f"params-{current}.npz"), **params)
with open(os.path.join(model_dir, f"worker-{current}.json"), "w") as f:
    json.dump({"rank": kv.rank, "workers": kv.num_workers, "shard": shard.tolist(),
               "role": os.environ["DMLC_ROLE"], "servers": os.environ["DMLC_NUM_SERVER"]}, f)
save(model_dir, module)
print("scheduler is", scheduler_host(hosts))
"""


def ps_job(tmp_path, **env):
    job = MLJob(tmp_path / "ml", hosts=TWO, hyperparameters=PS, env=env)
    for host in TWO:
        write_tree(job.tree(host) / "code", {"train.py": DIST_SYNC})
    return job


def test_two_hosts_train_with_dist_sync_each_on_its_shard_and_end_with_identical_parameters(image, tmp_path):
    first, second = run_job(image, ps_job(tmp_path), timeout_s=240)
    first.ok()
    second.ok()
    reports = [json.loads((r.model / f"worker-{r.host}.json").read_text()) for r in (first, second)]
    assert sorted(r["rank"] for r in reports) == [0, 1]
    assert {(r["workers"], r["servers"], r["role"]) for r in reports} == {(2, "2", "worker")}
    shards = [set(r["shard"]) for r in reports]
    assert not shards[0] & shards[1] and shards[0] | shards[1] == set(range(400))
    params = [np.load(r.model / f"params-{r.host}.npz") for r in (first, second)]
    assert sorted(params[0].files) == ["fc_bias", "fc_weight"]
    for name in params[0].files:  # the gradients were shared: one set of parameters
        assert np.array_equal(params[0][name], params[1][name]), name
    assert "parameter server: scheduler and server on algo-1" in first.logs
    assert "parameter server: server on algo-2" in second.logs
    assert (first.model / "model-symbol.json").exists() and not (second.model / "model-symbol.json").exists()


KILL_ROLE = """
import os, signal
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
        environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\\0")
    except OSError:
        continue
    if cmdline[-3:-1] == [b"-c", b"import mxnet"] and b"DMLC_ROLE=%s" in environ:
        os.kill(int(pid), signal.SIGKILL)
        print("killed", pid)
"""


@pytest.mark.expect_log_errors("a parameter-server role killed on purpose")
@pytest.mark.parametrize("host, role", [("algo-2", "server"), ("algo-1", "scheduler")])
def test_a_killed_server_or_scheduler_ends_the_job_on_every_host_with_its_cause(image, tmp_path, host, role):
    job = ps_job(tmp_path, STEP_PAUSE_S="0.2", EPOCHS="50")  # long enough to be killed mid-way
    killed = []

    def kill_when_training(tracked):
        def kill():
            deadline = time.monotonic() + 120
            while "epoch 0 batch 3" not in tracked[host].logs() and time.monotonic() < deadline:
                time.sleep(0.2)
            code, out = tracked[host].container.exec_run(["python3", "-c", KILL_ROLE % role])
            killed.append(out.decode())
        threading.Thread(target=kill, daemon=True).start()

    started = time.monotonic()
    results = {r.host: r for r in run_job(image, job, timeout_s=240, on_start=kill_when_training,
                                          stop_all_when_one_exits=True)}
    assert killed and "killed" in killed[0], killed
    assert results[host].cause().startswith(f"MXNet's parameter-server {role} (DMLC_ROLE={role}) on {host} was "
                                            "killed by signal SIGKILL (exit 137)")
    other = results[next(h for h in TWO if h != host)]
    assert other.exit_code != 0 and not other.timed_out  # ended too, not left waiting in dist_sync
    print(f"killed {role} on {host}: the job ended {time.monotonic() - started:.0f} s after it started")
