"""The serve check: the shared model server's gunicorn workers (2 per GPU, 2 without one) on
127.0.0.1 without nginx, serving served_model's TorchScript model with sm_pytorch's default
model_fn; concurrent requests until every worker has answered, and each worker k must hold the
model on GPU k mod N (the CPU without a GPU) and compute the right answer there. Without gunicorn
the same hooks run in one process per worker number instead."""

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request

from smimages.gpu_check.launch import child_env, free_port, me, run
from smimages.gpu_check.report import PASS, SKIP, Result, failed, marked, tail
from smimages.gpu_check.served_model import INPUT, expected_output


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
