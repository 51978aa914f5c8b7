"""mxnet: the Module API MNIST example trains, checkpoints every epoch, and resumes after a stop."""

import json
import re

import pytest

from smimages.testing.harness import MLJob, run_job, write_tree
from smimages.testing.mxnet_mnist import TRAIN_EPOCHS, mnist_job


def test_a_job_trains_and_writes_the_model(trained):
    result, model = trained
    result.ok()
    assert sorted(p.name for p in model.iterdir()) == ["code", "model-0000.params", "model-shapes.json",
                                                       "model-symbol.json"]
    assert (model / "code" / "inference.py").is_file()
    accuracy = float(re.search(r"test accuracy: ([\d.]+); model saved", result.logs).group(1))
    assert accuracy >= 0.9, result.logs
    assert f"epoch {TRAIN_EPOCHS}/{TRAIN_EPOCHS} done" in result.logs
    assert "checkpoint mnist-" not in result.logs  # no /opt/ml/checkpoints folder, no checkpoints


def stop_after_epoch(epoch, epochs):
    """on_start hook: follow the job's log and `docker stop` it (SIGTERM) once `epoch` is done."""
    def hook(tracked):
        [container] = [t.container for t in tracked.values()]
        seen = ""
        for chunk in container.logs(stream=True, follow=True):
            seen += chunk.decode("utf-8", errors="replace")
            if f"epoch {epoch}/{epochs} done" in seen:
                container.stop(timeout=10)
                return
    return hook


@pytest.mark.expect_log_errors("the failure under test")
def test_a_job_stopped_after_epoch_two_resumes_at_epoch_three(image, mnist, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    job = mnist_job(tmp_path / "ml", mnist[0], checkpoints=checkpoints, epochs=5)

    [first] = run_job(image, job, timeout_s=300, on_start=stop_after_epoch(2, 5))
    assert first.exit_code != 0, first.logs  # stopped, not finished
    assert "epoch 3/5 done" not in first.logs
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "mnist-0001.params", "mnist-0001.states", "mnist-0002.params", "mnist-0002.states", "mnist-symbol.json"]
    assert not (first.model / "model-0000.params").exists()

    [second] = run_job(image, job, timeout_s=300)
    second.ok()
    assert "resuming from epoch 2" in second.logs and "continuing at epoch 3 of 5" in second.logs
    done = re.findall(r"epoch (\d)/5 done", second.logs)
    assert done == ["3", "4", "5"], second.logs
    accuracy = float(re.search(r"test accuracy: ([\d.]+); model saved", second.logs).group(1))
    assert accuracy >= 0.9
    assert (second.model / "model-0000.params").is_file()
    assert (checkpoints / "mnist-0005.states").is_file()


@pytest.mark.expect_log_errors("the failure under test")
def test_a_bad_hyperparameter_fails_with_the_cause_first(image, mnist, tmp_path):
    job = mnist_job(tmp_path / "ml", mnist[0], **{"learning-rate": -1})
    [r] = run_job(image, job, timeout_s=120)
    assert r.exit_code == 2
    assert r.failure_first_line.startswith("user script train.py exited with code 2: ")
    assert "learning-rate must be positive" in r.failure_first_line


AWS_SAVE = """
import json, os
import mxnet as mx
from sagemaker_mxnet_container.training_utils import save, scheduler_host

net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=2, name="fc"), name="softmax")
module = mx.mod.Module(net, data_names=["data"], label_names=["softmax_label"])
module.bind(data_shapes=[("data", (1, 3))], label_shapes=[("softmax_label", (1,))])
module.init_params()
save(os.environ["SM_MODEL_DIR"], module)
print("scheduler is", scheduler_host(json.loads(os.environ["SM_HOSTS"])))
"""


def test_scripts_for_aws_mxnet_images_save_through_training_utils_once_on_two_hosts(image, tmp_path):
    job = MLJob(tmp_path / "ml", hosts=("algo-1", "algo-2"),
                hyperparameters={"sagemaker_program": "train.py", "sagemaker_submit_directory": "/opt/ml/code"})
    for host in job.hosts:
        write_tree(job.tree(host) / "code", {"train.py": AWS_SAVE})
    first, second = run_job(image, job, timeout_s=120)
    first.ok()
    second.ok()
    assert "scheduler is algo-1" in first.logs and "scheduler is algo-1" in second.logs
    assert sorted(p.name for p in first.model.iterdir()) == ["model-0000.params", "model-shapes.json", "model-symbol.json"]
    assert json.loads((first.model / "model-shapes.json").read_text()) == [{"name": "data", "shape": [1, 3]}]
    assert list(second.model.iterdir()) == []  # saved once, by the scheduler host
