"""custom-framework: every way a job goes wrong ends with a non-zero exit, within a bounded time,
and a failure file whose first line is the cause (CONTRACT.md lists where the toolkit fails)."""

import io
import tarfile
import time

import pytest
from harness import MLJob, program_job, run_job, write_tree


@pytest.fixture
def image(image_of):
    return image_of("custom-framework")


def test_user_script_exit_code_is_kept(image, tmp_path):
    [r] = run_job(image, program_job(tmp_path, "import sys; print('x', file=sys.stderr); sys.exit(3)"))
    assert r.cause(3) == "user script train.py exited with code 3: x"


def test_user_exception_is_the_first_line(image, tmp_path):
    [r] = run_job(image, program_job(tmp_path, "def f():\n    raise ValueError('learning rate must be positive')\nf()\n"))
    assert r.cause(1) == "user script train.py exited with code 1: ValueError: learning rate must be positive"
    assert "Traceback" in r.failure  # the detail follows the cause


def test_a_long_failure_message_keeps_the_cause_within_sagemakers_1024_characters(image, tmp_path):
    script = "import sys\nprint('noise\\n' * 5000, file=sys.stderr)\nraise RuntimeError('the cause ' + 'x' * 3000)\n"
    [r] = run_job(image, program_job(tmp_path, script))
    line = r.cause(1)
    assert line.startswith("user script train.py exited with code 1: RuntimeError: the cause xxx")
    assert r.failure.index("RuntimeError") < 1024


def test_script_killed_by_a_signal(image, tmp_path):
    [r] = run_job(image, program_job(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"))
    assert r.cause(137).startswith("user script train.py was killed by signal SIGKILL (exit 137)")


def test_out_of_memory_under_a_container_limit_is_named(image, tmp_path):
    script = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))\n"
    [r] = run_job(image, program_job(tmp_path, script), mem_limit="160m")
    line = r.cause(137)
    assert "SIGKILL" in line and "ran out of memory" in line


def test_output_that_is_not_utf8_still_gives_a_readable_failure(image, tmp_path):
    script = "import sys\nsys.stderr.buffer.write(b'bad bytes \\xff\\xfe here\\n')\nsys.exit(2)\n"
    [r] = run_job(image, program_job(tmp_path, script))
    assert r.cause(2).startswith("user script train.py exited with code 2: bad bytes")


def test_missing_program(image, tmp_path):
    job = MLJob(tmp_path / "ml", hyperparameters={"sagemaker_program": "nope.py",
                                                  "sagemaker_submit_directory": "/opt/ml/code"})
    write_tree(job.tree("algo-1") / "code", {"train.py": "print('hi')"})
    [r] = run_job(image, job)
    assert r.cause() == "sagemaker_program 'nope.py' was not found in /opt/ml/code"


NOTHING = "nothing to run: give the 'entrypoint' hyperparameter, or sagemaker_program with sagemaker_submit_directory"


@pytest.mark.parametrize("module, cause", [
    ("custom_framework_training.training:main", NOTHING),  # the framework module asks for a program
    ("", NOTHING + ", or set SAGEMAKER_TRAINING_MODULE"),
])
def test_nothing_to_run(image, tmp_path, module, cause):
    job = MLJob(tmp_path / "ml", hyperparameters={"epochs": "1"}, env={"SAGEMAKER_TRAINING_MODULE": module})
    [r] = run_job(image, job)
    assert r.cause() == cause


@pytest.mark.parametrize("name, text, cause", [
    ("hyperparameters.json", "{not json", "/opt/ml/input/config/hyperparameters.json is not valid JSON"),
    ("resourceconfig.json", "[1, 2]", "/opt/ml/input/config/resourceconfig.json must hold a JSON object"),
    ("inputdataconfig.json", None, "/opt/ml/input/config/inputdataconfig.json is missing"),
    ("resourceconfig.json", '{"hosts": ["algo-1"', "/opt/ml/input/config/resourceconfig.json is not valid JSON"),
    ("hyperparameters.json", None, "/opt/ml/input/config/hyperparameters.json is missing"),
])
def test_bad_config_files(image, tmp_path, name, text, cause):
    job = MLJob(tmp_path / "ml", hyperparameters={"entrypoint": "main.py"},
                channels={"training-code": {"main.py": "print('must not run')"}}, config_override={name: text})
    [r] = run_job(image, job)
    assert r.cause().startswith(cause)
    assert "must not run" not in r.logs


@pytest.mark.parametrize("entrypoint, cause", [
    ("missing.py", "entrypoint 'missing.py' was not found in /opt/ml/input/data/training-code"),
    ("../x.py", "entrypoint '../x.py' is refused: it points outside /opt/ml/input/data/training-code"),
    ("/opt/ml/input/data/training-code/main.py", "must be a path relative to"),
])
def test_bad_entrypoint(image, tmp_path, entrypoint, cause):
    job = MLJob(tmp_path / "ml", hyperparameters={"entrypoint": entrypoint},
                channels={"training-code": {"main.py": "print('hi')"}, "x": {}})
    write_tree(job.tree("algo-1") / "input" / "data", {"x.py": "print('escaped!')"})
    [r] = run_job(image, job)
    assert cause in r.cause()
    assert "escaped!" not in r.logs


def test_missing_channel_is_named_before_user_code_runs(image, tmp_path):
    job = MLJob(tmp_path / "ml", hyperparameters={"entrypoint": "main.py"},
                channels={"training-code": {"main.py": "print('must not run')"}, "train": {}})
    (job.tree("algo-1") / "input" / "data" / "train").rmdir()
    [r] = run_job(image, job)
    assert r.cause() == ("channel 'train' is declared in inputdataconfig.json but "
                         "/opt/ml/input/data/train does not exist")
    assert "must not run" not in r.logs


def test_missing_framework_module(image, tmp_path):
    job = MLJob(tmp_path / "ml", hyperparameters={"entrypoint": "main.py"},
                channels={"training-code": {"main.py": "print('must not run')"}},
                env={"SAGEMAKER_TRAINING_MODULE": "no_such_framework.training:main"})
    [r] = run_job(image, job)
    assert r.cause().startswith("SAGEMAKER_TRAINING_MODULE=no_such_framework.training:main: cannot load it: "
                                "ModuleNotFoundError")


def test_framework_module_raising_file_not_found_fails(image, tmp_path):
    """sagemaker-training exits 0 here: an exception whose errno is None is not converted."""
    job = MLJob(tmp_path / "ml", channels={"mods": {"broken_framework.py":
                "def main():\n    raise FileNotFoundError('framework config /etc/fw.yaml')\n"}},
                env={"SAGEMAKER_TRAINING_MODULE": "broken_framework:main", "PYTHONPATH": "/opt/ml/input/data/mods"})
    [r] = run_job(image, job)
    assert r.cause() == ("framework module broken_framework:main failed: "
                         "FileNotFoundError: framework config /etc/fw.yaml")


def evil_tarball(path, kind):
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("train.py")
        body = b"print('must not run')"
        ok.size = len(body)
        tar.addfile(ok, io.BytesIO(body))
        bad = tarfile.TarInfo({"dotdot": "../escaped.txt", "absolute": "/tmp/escaped.txt",
                               "symlink": "link", "hardlink": "hard"}[kind])
        if kind == "symlink":
            bad.type, bad.linkname = tarfile.SYMTYPE, "../../../.."
        elif kind == "hardlink":
            bad.type, bad.linkname = tarfile.LNKTYPE, "../input/config/hyperparameters.json"
        else:
            bad.size = 4
        tar.addfile(bad, io.BytesIO(b"evil") if bad.isreg() else None)
    return path


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink"])
def test_tarball_with_an_escaping_member_is_refused_before_extraction(image, tmp_path, kind):
    tarball = evil_tarball(tmp_path / "src.tar.gz", kind)
    job = MLJob(tmp_path / "ml", channels={"code": {"src.tar.gz": tarball}}, hyperparameters={
        "sagemaker_program": "train.py", "sagemaker_submit_directory": "/opt/ml/input/data/code/src.tar.gz"})
    [r] = run_job(image, job)
    assert r.cause().startswith("submitted tarball refused:")
    assert "must not run" not in r.logs
    assert not (job.tree("algo-1") / "code" / "train.py").exists()  # nothing was extracted
    assert not (job.tree("algo-1") / "escaped.txt").exists() and "/tmp/escaped.txt" not in r.changes


def test_host_that_never_resolves_fails_within_the_configured_time(image, tmp_path):
    job = MLJob(tmp_path / "ml", hosts=("algo-1", "algo-2"), hyperparameters={"entrypoint": "main.py"},
                channels={"training-code": {"main.py": "print('must not run')"}},
                env={"SM_ENTRYPOINT_HOST_WAIT_SECONDS": "6"})
    start = time.monotonic()
    [r] = run_job(image, job, start_hosts=["algo-1"], timeout_s=60)
    assert not r.timed_out and time.monotonic() - start < 40
    assert r.cause().startswith("host(s) algo-2 never resolved within 6 s")
    assert "waiting for algo-2 to resolve" in r.logs


def test_success_leaves_no_failure_file_even_after_an_earlier_failure(image, tmp_path):
    job = program_job(tmp_path, "print('fine')")
    (job.tree("algo-1") / "output" / "failure").write_text("left over from an earlier attempt")
    [r] = run_job(image, job)
    r.assert_succeeded()


def test_failure_removes_the_success_marker_of_an_earlier_run(image, tmp_path):
    job = program_job(tmp_path, "raise SystemExit('bad input')")
    (job.tree("algo-1") / "output" / "success").write_text("")
    [r] = run_job(image, job)
    assert "bad input" in r.cause()  # cause() also asserts that no success file is left


def test_sigterm_reaches_the_user_script_which_can_checkpoint(image, tmp_path):
    script = """
import os, signal, sys, time
def stop(signum, frame):
    open("/opt/ml/model/checkpoint", "w").write("saved on SIGTERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("handler installed", flush=True)
time.sleep(120)
"""
    job = program_job(tmp_path, script)

    def stop_once_running(tracked):
        # a stop before the script's handler exists would test nothing
        assert "handler installed" in tracked["algo-1"].logs_once("handler installed", timeout_s=45)
        container = tracked["algo-1"].container
        start = time.monotonic()
        container.stop(timeout=20)
        stop_once_running.took = time.monotonic() - start

    [r] = run_job(image, job, on_start=stop_once_running, timeout_s=60)
    assert (r.model / "checkpoint").read_text() == "saved on SIGTERM"
    assert stop_once_running.took < 10  # well inside the grace period: no kill was needed
    assert "received SIGTERM: forwarding it" in r.logs
