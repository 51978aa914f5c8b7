"""The GPU check's own logic (smimages/gpu_check/), which runs once, unattended, on a GPU machine:
the verdicts it draws from its children's output, and the report it prints."""

import ast
import re
import subprocess
import sys

import pytest

from smimages.catalog import ROOT
from smimages.gpu_check import children, ddp, launch, report, serve, served_model

DIGEST_A, DIGEST_B = "a" * 64, "b" * 64


def answer(worker, gpu_id, device, output=None):
    return {"worker": worker, "gpu_id": gpu_id, "devices": [device], "output_device": device,
            "output": served_model.expected_output() if output is None else output}


def round_robin(workers, gpus):
    return {k: answer(k, k % gpus, f"cuda:{k % gpus}") for k in range(workers)}


def test_the_served_model_answers_what_its_weights_say():
    assert served_model.expected_output() == [[0.5, 1.5]]  # 1 - 3 + 2 + 0.5, and 10/4 - 1


def test_workers_placed_round_robin_on_their_gpus_pass():
    assert serve.placement_problems(round_robin(4, 2), 4, 2) == []
    assert serve.placement_problems({k: answer(k, None, "cpu") for k in range(2)}, 2, 0) == []


def test_a_worker_on_the_wrong_gpu_or_device_is_named():
    answers = round_robin(4, 2)
    answers[3] = answer(3, 1, "cuda:0")  # the right gpu_id, the model left on GPU 0
    answers[2] = answer(2, 1, "cuda:1")  # worker 2 must have GPU 0
    problems = serve.placement_problems(answers, 4, 2)
    assert any(p.startswith("worker 2 has gpu_id 1, expected 0") for p in problems)
    assert any(p.startswith("worker 3's model is on ['cuda:0']") for p in problems)
    assert len(problems) == 3  # worker 2: its gpu_id and its device; worker 3: its device


def test_a_missing_worker_and_a_wrong_answer_fail():
    answers = round_robin(4, 2)
    del answers[1]
    answers[0]["output"] = [[0.5, 9.0]]
    problems = serve.placement_problems(answers, 4, 2)
    assert "no answer from worker(s) [1]" in problems
    assert any(p.startswith("worker 0 answered [[0.5, 9.0]]") for p in problems)


def test_without_a_gpu_a_worker_given_one_fails():
    assert serve.placement_problems({0: answer(0, 0, "cuda:0"), 1: answer(1, None, "cpu")}, 2, 0) != []


def log(*ranks, accuracy="0.9500"):
    lines = [f"rank {r}/{len(ranks)} weights sha256 {d}" for r, d in ranks]
    return "\n".join(["epoch 1/3: loss 0.1", *lines, f"test_accuracy={accuracy}"])


def test_ddp_passes_with_every_ranks_weights_identical_and_a_real_accuracy():
    assert ddp.ddp_outcome(log((0, DIGEST_A), (1, DIGEST_A)), 2) == ([], 0.95)


@pytest.mark.parametrize("output, world, problem", [
    (log((0, DIGEST_A), (1, DIGEST_B)), 2, "the ranks ended with different weights"),
    (log((0, DIGEST_A)), 2, "weights digests from ranks [0], expected 0..1"),
    (log((0, DIGEST_A), accuracy="0.1100"), 1, "test accuracy 0.110 is under 0.5"),
    ("rank 0/1 weights sha256 " + DIGEST_A, 1, "no test_accuracy line"),
])
def test_ddp_fails_on_what_would_mean_ddp_did_not_work(output, world, problem):
    assert problem in ddp.ddp_outcome(output, world)[0]


def test_a_childs_result_is_found_behind_a_launchers_prefix_and_the_last_one_wins():
    output = "\n".join(["noise", report.MARK + '{"n": 1}', "[0]<stdout>:" + report.MARK + '{"n": 2}',
                        report.MARK + "{not json"])
    assert report.marked(output) == {"n": 2}
    assert report.marked("no result here") is None


def test_one_failure_fails_the_check_and_skips_do_not():
    skips = [report.Result("nccl", report.SKIP, "no CUDA GPU"), report.Result("environment", report.PASS, "torch 2")]
    assert report.exit_code(skips) == 0
    assert report.exit_code([*skips, report.Result("serve", report.FAIL, "worker 1 on cuda:0")]) == 1


def test_the_report_has_one_line_a_check_its_detail_under_it_and_the_counts():
    results = [report.Result("environment", report.PASS, "torch 2.13", 3.14),
               report.Result("serve", report.FAIL, "no answer", 2.0, ["Traceback ...", "ValueError: x"]),
               report.Result("horovod", report.SKIP, "not importable")]
    lines = report.format_report(results, 61)
    assert lines[0] == "PASS  environment  torch 2.13 (3.1 s)"
    assert re.match(r"FAIL  serve +no answer \(2\.0 s\)$", lines[1])
    assert lines[2:4] == ["        | Traceback ...", "        | ValueError: x"]
    assert lines[4].startswith("SKIP  horovod")
    assert lines[-1] == "gpu-check: 1 passed, 1 failed, 1 skipped in 61 s"


def test_a_failure_shows_the_last_meaningful_lines_cut_short():
    text = "\n".join(["first", "", *[f"line {i}" for i in range(20)], "x" * 500, "   "])
    shown = report.tail(text, 3)
    assert shown[:2] == ["line 18", "line 19"] and shown[2] == "x" * 200


def test_each_step_gets_its_own_limit_or_what_is_left_less_the_reserve():
    now = [0.0]
    budget = launch.Budget(100, clock=lambda: now[0])
    assert budget.timeout(30) == 30
    now[0] = 75
    assert budget.timeout(30) == 100 - 75 - launch.RESERVE_S
    now[0] = 99
    assert budget.timeout(30) == 0


def test_children_get_an_absolute_pythonpath_and_not_the_dropped_variables(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "entrypoints:images/pytorch-horovod")
    monkeypatch.setenv("SAGEMAKER_PROGRAM", "other.py")
    env = launch.child_env({"SM_MODEL_DIR": "/m"}, drop=["SAGEMAKER_PROGRAM"])
    assert env["PYTHONPATH"].split(":") == [str(ROOT / "entrypoints"), str(ROOT / "images/pytorch-horovod"), str(ROOT)]
    assert env["SM_MODEL_DIR"] == "/m" and "SAGEMAKER_PROGRAM" not in env


def test_the_inference_script_is_python_with_the_hooks_the_server_looks_for():
    tree = ast.parse(served_model.INFERENCE)
    hooks = {f.name: [a.arg for a in f.args.args] for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert hooks == {"predict_fn": ["data", "model", "context"], "output_fn": ["prediction", "accept"]}
    assert served_model.WORKER_VAR in served_model.INFERENCE


def test_make_gpu_check_needs_no_docker_and_sets_the_packages_path():
    makefile = (ROOT / "Makefile").read_text()
    rule = re.search(r"^gpu-check:([^#\n]*)## .+\n\t(.+)$", makefile, re.M)
    assert rule, "no gpu-check target with a ## comment"
    assert rule.group(1).strip() == ""  # no engine, build or test-env: the GPU machine has no Docker
    assert "PYTHONPATH=entrypoints:images/pytorch-horovod" in rule.group(2)
    assert "-m smimages.gpu_check" in rule.group(2)
    assert (ROOT / "images/pytorch-horovod/sm_pytorch/serving_defaults.py").is_file()


def test_the_parent_imports_only_the_standard_library_and_its_own_modules():
    """torch and the rest are the children's: a fresh interpreter importing every module of the
    package (as `python3 -m smimages.gpu_check` does) loads nothing else."""
    code = ("import sys\nbefore = set(sys.modules)\n"  # what the interpreter's start loaded (site, .pth finders)
            "import importlib, pkgutil, smimages.gpu_check as p\n"
            "for m in pkgutil.iter_modules(p.__path__): importlib.import_module('smimages.gpu_check.' + m.name)\n"
            "print(' '.join(sorted({n.split('.')[0] for n in set(sys.modules) - before})))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    foreign = set(loaded.split()) - set(sys.stdlib_module_names) - {"smimages", "__main__"}
    assert not foreign, f"imported at the top of smimages.gpu_check: {sorted(foreign)}"


def test_each_child_the_checks_start_is_one_the_command_runs():
    assert launch.me("_env")[1:] == ["-m", "smimages.gpu_check", "_env"]
    source = "\n".join(p.read_text() for p in (ROOT / "smimages" / "gpu_check").glob("*.py"))
    started = set(re.findall(r'me\("(_\w+)"', source) + re.findall(r'"smimages\.gpu_check", "(_\w+)"', source))
    assert started == set(children.CHILDREN) == {"_env", "_nccl_probe", "_model", "_serve", "_worker", "_hvd_probe"}
