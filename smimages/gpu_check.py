"""The GPU check, for a machine with NVIDIA GPUs, PyTorch and Python but no Docker, no nginx and
no network: it runs this repository's own code from a checkout, installs nothing, and prints one
line per check (PASS / FAIL / SKIP, figures, seconds):

    make gpu-check    # PYTHONPATH=entrypoints:images/pytorch-horovod python3 -m smimages.gpu_check

  environment  torch and CUDA versions, the GPUs (names, memory, a matmul on each checked against
               the CPU), NCCL's version, and which of the packages the other checks use import
  nccl         torchrun, one process per GPU: an all_reduce checked, and its bus bandwidth
  ddp          examples/pytorch-mnist-ddp/mnist.py, backend nccl, one process per GPU, through the
               shared entrypoint's `train` (torch_distributed) on a temporary /opt/ml when
               sagemaker-training imports here, else through torchrun; the digits from
               smimages.datasets (synthetic ones without scikit-learn): accuracy, every rank's
               final weights identical
  serve        the shared model server's gunicorn workers (2 per GPU) on 127.0.0.1, without
               nginx, serving a TorchScript model.pt with sm_pytorch's default model_fn: each
               worker k must hold the model on GPU k mod N and compute the right answer there.
               Without gunicorn the same hooks run in one process per worker number instead
  horovod      when horovod.torch imports: an allreduce over one process per GPU (horovodrun, Gloo)

Without a GPU the GPU parts say SKIP and why; ddp then runs the same launch with gloo on the CPU
and serve runs on the CPU (workers get gpu_id None), so the code paths are checked anyway. The exit
code is 1 when a check that ran failed. Every step runs in processes of its own, each under a
timeout, all within GPU_CHECK_BUDGET_S (default 480 s); each step's output is kept under
out/gpu-check/ (GPU_CHECK_LOGS). GPU_CHECK_LAUNCHER=torchrun skips the entrypoint for ddp.

This module imports only the standard library at the top: torch and the rest are imported by the
child processes it starts (`python3 -m smimages.gpu_check _env`, ...), so a broken package is a
failed check, not a crash of the check.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = "GPU_CHECK_RESULT "  # a child's result: this prefix, then one line of JSON
BUDGET_S = 480.0
RESERVE_S = 10.0  # kept back from each step for the report itself
PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
MODULES = ("numpy", "torchvision", "sklearn", "gunicorn", "sagemaker_training", "psutil", "horovod.torch")
WORKER_VAR = "GPU_CHECK_WORKER"  # the gunicorn worker's number (age - 1), set in the worker for the script
MIN_ACCURACY = 0.5  # ten classes: chance is 0.1; a few epochs on the digits reach 0.9
HOLD_S = 0.3  # each request holds its worker this long, so concurrent requests reach every worker

# The served model: Linear(4, 2) with these weights, so the answer is known without torch here.
WEIGHT = [[1.0, 0.0, -1.0, 0.5], [0.25, 0.25, 0.25, 0.25]]
BIAS = [0.5, -1.0]
INPUT = [[1.0, 2.0, 3.0, 4.0]]

INFERENCE = f'''"""gpu-check's inference script: the image's default model_fn loads model.pt (onto
cuda:<gpu_id>); this predict_fn runs it and says where it ran, and in which worker."""
import json
import os
import time

import torch


def predict_fn(data, model, context):
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model(data.to(device))
    time.sleep({HOLD_S})  # hold this worker: concurrent requests reach the others
    return {{"pid": os.getpid(), "worker": int(os.environ.get("{WORKER_VAR}", "-1")),
            "gpu_id": context.system_properties.get("gpu_id"),
            "devices": sorted({{str(p.device) for p in model.parameters()}}),
            "output_device": str(out.device), "output": out.cpu().tolist()}}


def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
'''


# --- the report: pure logic ----------------------------------------------------------------------

@dataclass
class Result:
    name: str
    status: str  # PASS, FAIL or SKIP
    summary: str
    seconds: float = 0.0
    detail: list = field(default_factory=list)  # a failure's last log lines, shown under it


def format_line(result):
    return f"{result.status:<4}  {result.name:<11}  {result.summary} ({result.seconds:.1f} s)"


def format_report(results, seconds):
    """The lines after the header: one per check (a failure's detail indented under it), a total."""
    lines = []
    for r in results:
        lines.append(format_line(r))
        lines.extend(f"        | {line}" for line in r.detail)
    counts = {s: sum(r.status == s for r in results) for s in (PASS, FAIL, SKIP)}
    lines.append(f"gpu-check: {counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped "
                 f"in {seconds:.0f} s")
    return lines


def exit_code(results):
    """1 when a check that ran failed; a SKIP is not a failure."""
    return 1 if any(r.status == FAIL for r in results) else 0


def marked(output):
    """The last result a child printed (MARK + JSON, after any prefix a launcher adds, such as
    horovodrun's `[0]<stdout>:`), or None."""
    found = None
    for line in output.splitlines():
        at = line.find(MARK)
        if at >= 0:
            try:
                found = json.loads(line[at + len(MARK):])
            except ValueError:
                continue
    return found


def tail(text, count=8):
    """The last `count` non-empty lines, each cut to 200 characters: what a failure shows."""
    lines = [ln.rstrip()[:200] for ln in text.splitlines() if ln.strip()]
    return lines[-count:]


def ddp_outcome(output, world_size):
    """(problems, accuracy) from the DDP example's log: its test accuracy, and one weights digest
    per rank, all the same (DistributedDataParallel kept the ranks in step)."""
    from smimages.testing.pytorch_mnist import ACCURACY, DIGEST

    problems = []
    digests = {int(rank): digest for rank, _, digest in DIGEST.findall(output)}
    if sorted(digests) != list(range(world_size)):
        problems.append(f"weights digests from ranks {sorted(digests)}, expected 0..{world_size - 1}")
    elif len(set(digests.values())) != 1:
        problems.append("the ranks ended with different weights")
    found = ACCURACY.findall(output)
    accuracy = float(found[-1]) if found else None
    if accuracy is None:
        problems.append("no test_accuracy line")
    elif accuracy < MIN_ACCURACY:
        problems.append(f"test accuracy {accuracy:.3f} is under {MIN_ACCURACY}")
    return problems, accuracy


def expected_output():
    return [[sum(w * x for w, x in zip(row, xs)) + b for row, b in zip(WEIGHT, BIAS)] for xs in INPUT]


def placement_problems(answers, workers, gpus):
    """What is wrong with the workers' answers ({worker number: answer}) when `workers` workers
    share `gpus` GPUs: worker k must have gpu_id k mod gpus (None without a GPU), its model's
    tensors on that device, and the right output computed there. [] when all is well."""
    problems = []
    missing = [k for k in range(workers) if k not in answers]
    if missing:
        problems.append(f"no answer from worker(s) {missing}")
    want_output = expected_output()
    for k in sorted(answers):
        a = answers[k]
        gpu = k % gpus if gpus else None
        device = f"cuda:{gpu}" if gpus else "cpu"
        if a.get("gpu_id") != gpu:
            problems.append(f"worker {k} has gpu_id {a.get('gpu_id')}, expected {gpu}")
        if a.get("devices") != [device] or a.get("output_device") != device:
            problems.append(f"worker {k}'s model is on {a.get('devices')} (output on "
                            f"{a.get('output_device')}), expected {device}")
        got = a.get("output")
        if not (isinstance(got, list) and len(got) == len(want_output) and all(
                len(r) == len(w) and all(abs(x - y) < 1e-3 for x, y in zip(r, w)) for r, w in zip(got, want_output))):
            problems.append(f"worker {k} answered {got}, expected {want_output}")
    return problems


class Budget:
    """The whole check's time: each step gets its own limit or what is left, less a reserve."""

    def __init__(self, total_s, clock=time.monotonic):
        self.clock = clock
        self.deadline = clock() + total_s

    def timeout(self, step_s):
        return max(0.0, min(step_s, self.deadline - self.clock() - RESERVE_S))


# --- running children ----------------------------------------------------------------------------

@dataclass
class Run:
    returncode: int
    output: str
    seconds: float
    timed_out: bool

    @property
    def ok(self):
        return self.returncode == 0 and not self.timed_out

    def outcome(self, timeout_s):
        if self.timed_out:
            return f"did not finish within {timeout_s:.0f} s"
        return f"exited with code {self.returncode}"


def child_env(extra=None, drop=()):
    """This environment with PYTHONPATH made absolute (children may run in another folder)."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str((ROOT / p).resolve()) for p in paths] + [str(ROOT)])
    env.update(extra or {})
    return env


def run(cmd, timeout_s, log_path, env=None, cwd=ROOT):
    """Run `cmd` in a session of its own, its output to log_path; kill the whole session (torchrun's
    and gunicorn's children too) when it outlives timeout_s."""
    started = time.monotonic()
    with open(log_path, "w+", errors="replace") as log:
        log.write(f"$ {' '.join(map(str, cmd))}\n")
        log.flush()
        proc = subprocess.Popen([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env or child_env(), cwd=cwd, start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        _kill_session(proc)
        log.seek(0)
        output = log.read()
    return Run(proc.returncode if proc.returncode is not None else -9, output, time.monotonic() - started, timed_out)


def _kill_session(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # what is left of it (its own pid is its session's id)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def me(*args):
    return [sys.executable, "-m", "smimages.gpu_check", *args]


def torchrun(nproc, *args):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *args]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def failed(name, started, summary, run_=None, detail=None):
    return Result(name, FAIL, summary, time.monotonic() - started,
                  detail if detail is not None else (tail(run_.output) if run_ else []))


# --- the checks ----------------------------------------------------------------------------------

def check_environment(ctx):
    started = time.monotonic()
    timeout = ctx.budget.timeout(120)
    r = run(me("_env"), timeout, ctx.logs / "environment.log")
    info = marked(r.output)
    if not r.ok or info is None:
        return failed("environment", started, f"probing torch {r.outcome(timeout)}", r), info
    ctx.info = info
    gpus = info["gpus"]
    names = ", ".join(f"{g['name']} ({g['memory_gb']:.0f} GB, sm_{g['capability']})" for g in gpus) or "none"
    parts = [f"python {info['python']}, torch {info['torch']}", f"CUDA build {info['cuda_build']}",
             f"cuda.is_available() {info['cuda_available']}", f"{len(gpus)} GPU(s): {names}",
             f"NCCL {info['nccl'] or 'n/a'}"]
    if info.get("driver"):
        parts.append(f"driver {info['driver']}")
    if info.get("cuda_visible_devices") is not None:
        parts.append(f"CUDA_VISIBLE_DEVICES={info['cuda_visible_devices']}")
    absent = [m for m, error in info["modules"].items() if error]
    parts.append("not importable: " + (", ".join(absent) if absent else "none"))
    bad = [f"GPU {g['index']}: matmul {g['matmul_error']}" for g in gpus if not g["matmul_ok"]]
    if info["driver_gpus"] and not gpus:
        bad.append(f"the NVIDIA driver sees {info['driver_gpus']} GPU(s), torch none")
    if bad:
        return failed("environment", started, "; ".join(parts), detail=bad), info
    if gpus:
        parts.append("a matmul on each GPU matches the CPU's")
    return Result("environment", PASS, "; ".join(parts), time.monotonic() - started), info


def check_nccl(ctx):
    started = time.monotonic()
    n = ctx.gpus
    if not n:
        return Result("nccl", SKIP, "no CUDA GPU: NCCL needs one per rank")
    if not ctx.info["nccl_available"]:
        return failed("nccl", started, "torch.distributed.is_nccl_available() is False in this torch build")
    timeout = ctx.budget.timeout(150)
    r = run(torchrun(n, "-m", "smimages.gpu_check", "_nccl_probe"), timeout, ctx.logs / "nccl.log")
    got = marked(r.output)
    if not r.ok or got is None:
        return failed("nccl", started, f"torchrun of {n} rank(s) {r.outcome(timeout)}", r)
    if not got["sum_ok"]:
        return failed("nccl", started, f"all_reduce over {n} rank(s) gave {got['sum']}, expected {got['expected']}", r)
    figures = (f", {got['size_mb']:.0f} MB all_reduce: {got['ms']:.2f} ms, bus bandwidth {got['busbw_gbs']:.1f} GB/s"
               if n > 1 else " (one rank: no traffic between GPUs to measure)")
    return Result("nccl", PASS, f"torchrun, {n} rank(s) on {', '.join(got['devices'])}: all_reduce correct{figures}",
                  time.monotonic() - started)


def check_ddp(ctx):
    started = time.monotonic()
    modules = ctx.info["modules"]
    for need, why in (("numpy", "the example and the digits need it"), ("torchvision", "the example imports it")):
        if modules.get(need):
            return Result("ddp", SKIP, f"{need} is not importable ({why}): {modules[need]}")
    gpus = ctx.gpus
    backend = "nccl" if gpus else "gloo"
    # The entrypoint needs sagemaker-training and psutil (in every image; on a bare machine, maybe not).
    via_entrypoint = (not modules["sagemaker_training"] and not modules["psutil"]
                      and os.environ.get("GPU_CHECK_LAUNCHER", "") != "torchrun")
    work = ctx.tmp / "ddp"
    data = "digits"
    try:
        mnist = _digits(work / "data")
    except ImportError as e:  # no scikit-learn: the same files, from synthetic digits
        mnist = _synthetic_digits(work / "data")
        data = f"synthetic digits ({e.name or 'scikit-learn'} is not importable)"
    args = {"epochs": "3", "lr": "0.05", "batch-size": "32", "backend": backend}
    timeout = ctx.budget.timeout(240)
    if via_entrypoint:
        launcher = "the entrypoint's train (torch_distributed)"
        base, r = _train_with_entrypoint(ctx, work, mnist, args, timeout)
        launched = re.search(r"torchrun with (\d+) process", r.output)
        world = int(launched.group(1)) if launched else max(gpus, 1)
    else:
        launcher = "torchrun"
        world = gpus or 2
        script = ROOT / "examples" / "pytorch-mnist-ddp" / "mnist.py"
        flags = [x for k, v in args.items() for x in (f"--{k}", v)]
        r = run(torchrun(world, script, *flags, "--model-dir", work / "model", "--train", mnist["train"],
                         "--test", mnist["test"]), timeout, ctx.logs / "ddp.log")
    label = f"{launcher}, backend {backend}, world size {world}, {data}"
    if not r.ok:
        return failed("ddp", started, f"{label}: {r.outcome(timeout)}", r)
    problems, accuracy = ddp_outcome(r.output, world)
    if gpus and world != gpus:
        problems.append(f"{world} process(es) for {gpus} visible GPU(s)")
    if via_entrypoint and not (base / "output" / "success").exists():
        problems.append("train exited 0 but wrote no output/success")
    if problems:
        return failed("ddp", started, f"{label}: {'; '.join(problems)}", r)
    same = "the ranks' final weights identical" if world > 1 else "one rank"
    figures = f"{label}: test accuracy {accuracy:.3f}, {same}, {r.seconds:.1f} s"
    if not gpus:
        return Result("ddp", SKIP, f"no CUDA GPU for nccl; the same run with gloo on the CPU passed: {figures}",
                      time.monotonic() - started)
    return Result("ddp", PASS, figures, time.monotonic() - started)


def _digits(folder):
    from smimages.testing.pytorch_mnist import make_mnist

    return make_mnist(folder, train_limit=3000)


def _synthetic_digits(folder, per_class_train=300, per_class_test=30):
    """MNIST-format files of ten fixed random blobs, noisy and shifted: learnable, and written by
    the project's own idx writer, for a machine without scikit-learn's digits."""
    import numpy as np

    from smimages.datasets.mnist_digits import write_idx

    rng = np.random.default_rng(0)
    prototypes = np.zeros((10, 28, 28))
    prototypes[:, 6:22, 6:22] = rng.random((10, 16, 16)) > 0.6
    channels = {}
    for channel, prefix, count in (("train", "train", per_class_train), ("test", "t10k", per_class_test)):
        labels = np.repeat(np.arange(10), count)
        images = prototypes[labels]
        images = np.stack([np.roll(img, tuple(rng.integers(-2, 3, 2)), axis=(0, 1)) for img in images])
        flip = rng.random(images.shape) < 0.05
        images = np.where(flip, 1 - images, images)
        order = rng.permutation(len(labels))
        out = Path(folder) / channel
        out.mkdir(parents=True, exist_ok=True)
        write_idx(str(out / f"{prefix}-images-idx3-ubyte.gz"), (images[order] * 255).astype(np.uint8))
        write_idx(str(out / f"{prefix}-labels-idx1-ubyte.gz"), labels[order].astype(np.uint8))
        channels[channel] = out
    return channels


def _train_with_entrypoint(ctx, work, mnist, args, timeout):
    """The DDP example as SageMaker runs it: a /opt/ml tree under `work`, `train` with
    SAGEMAKER_BASE_DIR pointing there, torch_distributed as the SDK's PyTorch estimator asks."""
    base = work / "ml" / "algo-1"
    config = base / "input" / "config"
    config.mkdir(parents=True)
    (base / "output").mkdir()
    (base / "model").mkdir()
    code = base / "code"
    shutil.copytree(ROOT / "examples" / "pytorch-mnist-ddp", code)
    for channel, folder in mnist.items():
        shutil.copytree(folder, base / "input" / "data" / channel)
    hyperparameters = {"sagemaker_program": "mnist.py", "sagemaker_submit_directory": str(code),
                       "sagemaker_torch_distributed_enabled": "true", **args}
    files = {"hyperparameters.json": hyperparameters,
             "inputdataconfig.json": {c: {"TrainingInputMode": "File"} for c in mnist},
             "resourceconfig.json": {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}}
    for name, content in files.items():
        (config / name).write_text(json.dumps(content))
    drop = [k for k in os.environ if k.startswith(("SM_", "SAGEMAKER_"))]
    env = child_env({"SAGEMAKER_BASE_DIR": str(base), "SM_ENTRYPOINT_PYTHON": sys.executable}, drop)
    r = run([sys.executable, "-c", "from sm_entrypoint import cli; cli.train()"], timeout, ctx.logs / "ddp.log", env)
    return base, r


def check_serve(ctx):
    started = time.monotonic()
    modules = ctx.info["modules"]
    if modules.get("numpy"):
        return Result("serve", SKIP, f"numpy is not importable (the server's codecs need it): {modules['numpy']}")
    gpus = ctx.gpus
    workers = 2 * gpus if gpus else 2
    model_dir = ctx.tmp / "model"
    timeout = ctx.budget.timeout(60)
    r = run(me("_model", model_dir), timeout, ctx.logs / "serve-model.log")
    if not r.ok:
        return failed("serve", started, f"writing the TorchScript model {r.outcome(timeout)}", r)
    env = child_env({"SM_MODEL_DIR": str(model_dir), "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
                     "SAGEMAKER_MODEL_SERVER_TIMEOUT": "120",
                     "SAGEMAKER_DEFAULT_HANDLERS": "sm_pytorch.serving_defaults"},
                    [k for k in os.environ if k.startswith(("SM_", "SAGEMAKER_"))])
    where = f"{workers} worker(s) on {gpus} GPU(s)" if gpus else f"{workers} worker(s), no GPU (gpu_id None, CPU)"
    if modules.get("gunicorn"):
        how = f"gunicorn absent ({modules['gunicorn']}): the server's hooks in one process per worker number"
        answers, run_ = _emulated_workers(ctx, env, workers)
    else:
        how = "gunicorn workers on 127.0.0.1 (no nginx)"
        answers, run_ = _served(ctx, env, workers)
    if isinstance(answers, str):
        causes = [ln.strip()[:200] for ln in (run_.output if run_ else "").splitlines() if "model_fn failed" in ln]
        return failed("serve", started, f"{how}: {answers}", detail=causes[:1] + (tail(run_.output, 6) if run_ else []))
    problems = placement_problems(answers, workers, gpus)
    if problems:
        return failed("serve", started, f"{how}, {where}: {'; '.join(problems[:4])}", run_)
    placed = ", ".join(f"{k}->{answers[k]['devices'][0]}" for k in sorted(answers))
    summary = f"{how}, {where}: each worker's model on its own device and right ({placed})"
    return Result("serve", PASS, summary, time.monotonic() - started)


def _served(ctx, env, workers):
    """({worker: answer}, the server's Run) from the gunicorn workers, or (a reason, Run)."""
    port, pid_file = free_port(), ctx.tmp / "serve.pid"
    timeout = ctx.budget.timeout(180)
    deadline = time.monotonic() + timeout - 15  # time left to stop the server
    result = {}

    def serve():
        result["run"] = run(me("_serve", port, pid_file), timeout, ctx.logs / "serve.log", env)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}/invocations"
    answers, errors = {}, []
    while time.monotonic() < deadline and server.is_alive() and len(answers) < workers:
        errors = _request_round(url, workers, answers)
        if errors and all(isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError)
                          for e in errors):
            time.sleep(0.5)  # not listening yet, or no worker has loaded the model yet
    ended = not server.is_alive()
    try:
        os.kill(int(pid_file.read_text()), signal.SIGTERM)  # gunicorn's arbiter stops its workers
    except (OSError, ValueError):
        pass
    server.join(timeout=30)
    run_ = result.get("run")
    if answers:
        return answers, run_
    if ended and run_:
        return f"the server ended before any worker answered: it {run_.outcome(timeout)}", run_
    return f"no worker answered within {timeout:.0f} s" + (f" (last error: {errors[-1]})" if errors else ""), run_


def _request_round(url, count, answers):
    """`count` requests at once (each holds its worker HOLD_S); answers by worker number."""
    errors = []
    body = json.dumps(INPUT).encode()

    def ask():
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json",
                                                                  "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read())
            answers.setdefault(answer["worker"], answer)
        except (OSError, ValueError) as e:
            errors.append(e)

    threads = [threading.Thread(target=ask) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _emulated_workers(ctx, env, workers):
    """What each gunicorn worker does, without gunicorn: one process per worker number."""
    timeout = ctx.budget.timeout(150)
    runs = {}

    def one(k):
        runs[k] = run(me("_worker", k), timeout, ctx.logs / f"serve-worker-{k}.log", env)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answers = {}
    for k, r in sorted(runs.items()):
        got = marked(r.output)
        if not r.ok or got is None:
            return f"worker {k} {r.outcome(timeout)}", r
        answers[k] = got
    return answers, None


def check_horovod(ctx):
    started = time.monotonic()
    error = ctx.info["modules"].get("horovod.torch")
    if error:
        return Result("horovod", SKIP, f"horovod.torch is not importable here: {error}")
    n = ctx.gpus or 2
    timeout = ctx.budget.timeout(150)
    cmd = [sys.executable, "-m", "horovod.runner.launch", "--gloo", "-np", str(n), "-H", f"localhost:{n}",
           "--start-timeout", "60", *me("_hvd_probe")]
    r = run(cmd, timeout, ctx.logs / "horovod.log")
    got = marked(r.output)
    if not r.ok or got is None:
        return failed("horovod", started, f"horovodrun --gloo -np {n} {r.outcome(timeout)}", r)
    builds = f"NCCL built: {got['nccl_built']}, Gloo: {got['gloo_built']}, MPI: {got['mpi_built']}"
    if not got["sum_ok"]:
        return failed("horovod", started, f"allreduce over {n} gave {got['sum']}, expected {got['expected']}", r)
    if ctx.gpus and not got["nccl_built"]:
        return failed("horovod", started, f"Horovod has no NCCL on a GPU machine ({builds})", r)
    return Result("horovod", PASS, f"horovodrun --gloo, {n} process(es) on {got['device']}: allreduce correct; {builds}",
                  time.monotonic() - started)


@dataclass
class Context:
    budget: Budget
    logs: Path
    tmp: Path
    info: dict = None

    @property
    def gpus(self):
        return len(self.info["gpus"]) if self.info and self.info["cuda_available"] else 0


def main():
    started = time.monotonic()
    logs = Path(os.environ.get("GPU_CHECK_LOGS") or ROOT / "out" / "gpu-check")
    logs.mkdir(parents=True, exist_ok=True)
    budget = Budget(float(os.environ.get("GPU_CHECK_BUDGET_S") or BUDGET_S))
    print(f"gpu-check: {sys.executable} in {ROOT}; step logs in {logs}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        ctx = Context(budget, logs, Path(tmp))
        results.append(check_environment(ctx)[0])
        _emit(results[-1])
        for name, check in (("nccl", check_nccl), ("ddp", check_ddp), ("serve", check_serve),
                            ("horovod", check_horovod)):
            if ctx.info is None:
                result = Result(name, SKIP, "the environment could not be probed (see above)")
            elif budget.timeout(60) < 20:
                result = Result(name, SKIP, f"out of time (GPU_CHECK_BUDGET_S={budget_s()})")
            else:
                try:
                    result = check(ctx)
                except Exception as e:  # noqa: BLE001 - a bug in one check is that check's failure
                    result = Result(name, FAIL, f"the check itself failed: {type(e).__name__}: {e}")
            results.append(result)
            _emit(result)
    print(format_report(results, time.monotonic() - started)[-1], flush=True)
    return exit_code(results)


def _emit(result):
    for line in format_report([result], 0)[:-1]:
        print(line, flush=True)


def budget_s():
    return os.environ.get("GPU_CHECK_BUDGET_S") or f"{BUDGET_S:.0f}"


# --- what runs in the child processes ------------------------------------------------------------

def _say(result):
    print(MARK + json.dumps(result), flush=True)


def _env():
    info = {"python": sys.version.split()[0], "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    modules = {}  # name -> "" when it imports, else why not
    for name in MODULES:
        try:
            __import__(name)
            modules[name] = ""
        except Exception as e:  # noqa: BLE001 - any failure to import is the reason a check skips
            modules[name] = f"{type(e).__name__}: {e}"[:200]
    import torch
    import torch.distributed as dist

    info.update(torch=torch.__version__, cuda_build=torch.version.cuda, cuda_available=torch.cuda.is_available(),
                nccl_available=dist.is_available() and dist.is_nccl_available(), modules=modules, gpus=[], nccl=None,
                driver_gpus=_driver_gpus())
    if info["cuda_available"]:
        try:
            version = torch.cuda.nccl.version()
            info["nccl"] = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
        except Exception as e:  # noqa: BLE001 - said in the report
            info["nccl"] = f"unknown ({e})"
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpu = {"index": i, "name": props.name, "memory_gb": props.total_memory / 2**30,
                   "capability": f"{props.major}{props.minor}", "matmul_ok": False, "matmul_error": ""}
            try:
                a = torch.randn(512, 512, generator=torch.Generator().manual_seed(i), dtype=torch.float64)
                on_gpu = (a.to(f"cuda:{i}") @ a.to(f"cuda:{i}")).cpu()
                gpu["matmul_ok"] = torch.allclose(on_gpu, a @ a, rtol=1e-6, atol=1e-6)
                gpu["matmul_error"] = "" if gpu["matmul_ok"] else "differs from the CPU's"
            except Exception as e:  # noqa: BLE001 - a GPU that cannot compute is the finding
                gpu["matmul_error"] = f"{type(e).__name__}: {e}"[:300]
            info["gpus"].append(gpu)
        smi = shutil.which("nvidia-smi")
        if smi:
            try:
                out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                                     capture_output=True, text=True, timeout=20).stdout.split()
                info["driver"] = out[0] if out else None
            except (OSError, subprocess.TimeoutExpired):
                pass
    _say(info)


def _driver_gpus():
    """How many GPUs the NVIDIA driver sees, whatever torch makes of them (0 without a driver)."""
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


def _nccl_probe():
    """One rank under torchrun: an all_reduce checked, then timed on 256 MB."""
    import datetime

    import torch
    import torch.distributed as dist

    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl", timeout=datetime.timedelta(seconds=120))
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{local_rank}")
    t = torch.full((1024,), float(rank + 1), device=device)
    dist.all_reduce(t)
    expected = world * (world + 1) / 2
    sum_ok = bool(torch.all(t == expected).item())
    devices = [None] * world
    dist.all_gather_object(devices, f"cuda:{local_rank} ({torch.cuda.get_device_name(local_rank)})")
    big = torch.ones(64 * 2**20, device=device)  # 256 MB of float32
    for _ in range(2):
        dist.all_reduce(big)
    torch.cuda.synchronize()
    repeats = 5
    begin = time.perf_counter()
    for _ in range(repeats):
        dist.all_reduce(big)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - begin) / repeats
    size = big.numel() * 4
    if rank == 0:
        _say({"sum_ok": sum_ok, "sum": t[0].item(), "expected": expected, "devices": devices,
              "size_mb": size / 2**20, "ms": seconds * 1000,
              "busbw_gbs": size / seconds / 1e9 * 2 * (world - 1) / world})
    dist.barrier()
    dist.destroy_process_group()


def _model(model_dir):
    """model.pt (TorchScript, on the CPU: model_fn moves it) and code/inference.py."""
    import torch

    layer = torch.nn.Linear(4, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(WEIGHT))
        layer.bias.copy_(torch.tensor(BIAS))
    code = Path(model_dir) / "code"
    code.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(layer), str(Path(model_dir) / "model.pt"))
    (code / "inference.py").write_text(INFERENCE)


def _serve(port, pid_file):
    """The shared model server's gunicorn part as `serve` runs it (settings from the environment,
    the script and the image's defaults, workers placed per GPU), bound to 127.0.0.1:port instead
    of the unix socket behind nginx. Each worker's number goes to WORKER_VAR for the script."""
    import logging

    from sm_entrypoint.serving import runner
    from sm_entrypoint.serving.settings import ServingSettings

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s [gpu-check serve] %(levelname)s %(message)s")
    Path(pid_file).write_text(str(os.getpid()))
    settings = ServingSettings.from_env()
    runner.share_cpus(settings)
    handlers = runner.prepare(settings)
    run_dir = tempfile.mkdtemp(prefix="gpu-check-serve-")

    class TcpModelServer(runner.ModelServer):
        def load_config(self):
            super().load_config()
            self.cfg.set("bind", [f"127.0.0.1:{port}"])

        def _post_fork(self, arbiter, worker):
            os.environ[WORKER_VAR] = str(worker.age - 1)
            super()._post_fork(arbiter, worker)

    try:
        TcpModelServer(settings, handlers, run_dir).run()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _worker(number):
    """Worker `number` without gunicorn: what runner.ModelServer does after the fork (the GPU by
    gpu_for, model_fn with the context), then one request through the hooks."""
    from sm_entrypoint.serving import handlers as hooks
    from sm_entrypoint.serving import user_script
    from sm_entrypoint.serving.context import Context as ServingContext
    from sm_entrypoint.serving.context import gpu_for
    from sm_entrypoint.serving.settings import ServingSettings

    settings = ServingSettings.from_env()
    path = user_script.script_path(settings)
    handlers = hooks.resolve(user_script.load(path) if path else None,
                             user_script.load_defaults(settings.default_handlers))
    os.environ[WORKER_VAR] = str(number)
    gpu_id = gpu_for(number)
    model = handlers.load_model(settings.model_dir, ServingContext(settings.model_dir, gpu_id))
    context = ServingContext(settings.model_dir, gpu_id, {"Content-Type": "application/json"})
    body, _ = handlers.transform(model, json.dumps(INPUT).encode(), "application/json", "application/json", context)
    _say(json.loads(body))


def _hvd_probe():
    import horovod.torch as hvd
    import torch

    hvd.init()
    if torch.cuda.is_available():
        torch.cuda.set_device(hvd.local_rank())
        device = torch.device(f"cuda:{hvd.local_rank()}")
    else:
        device = torch.device("cpu")
    t = torch.full((1024,), float(hvd.rank() + 1), device=device)
    total = hvd.allreduce(t, op=hvd.Sum)
    expected = hvd.size() * (hvd.size() + 1) / 2
    devices = hvd.allgather_object(str(device))
    if hvd.rank() == 0:
        _say({"sum_ok": bool(torch.all(total == expected).item()), "sum": total[0].item(), "expected": expected,
              "device": ", ".join(devices), "nccl_built": bool(hvd.nccl_built()),
              "gloo_built": bool(hvd.gloo_built()), "mpi_built": bool(hvd.mpi_built())})
    hvd.shutdown()


CHILDREN = {"_env": _env, "_nccl_probe": _nccl_probe, "_model": _model, "_serve": _serve,
            "_worker": lambda number: _worker(int(number)), "_hvd_probe": _hvd_probe}

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in CHILDREN:
        CHILDREN[sys.argv[1]](*sys.argv[2:])
    else:
        sys.exit(main())
