"""`train` on a temporary /opt/ml, as a user sees it: the exit code, output/success written on
success and removed on failure, output/failure whose first line is the one-line cause, and user
code never started when the job's own files are wrong. Every cause a job can end with is checked
where it is made (test_config.py, test_program_resolve.py, test_source.py, ...); here, that each
reaches the user this way. (What only a container shows, tini and `docker stop`, a memory limit,
several hosts on a network, stays in tests/by_image.)"""

import io
import tarfile

import pytest


def test_success_writes_the_success_file_and_removes_an_earlier_failure(job):
    job.program("print('fine')")
    (job.base / "output" / "failure").write_text("left over from an earlier attempt")
    r = job.run()
    r.ok()
    assert (job.base / "output" / "success").read_text() == ""  # empty, as sagemaker-training writes it


def test_failure_removes_the_success_file_of_an_earlier_run(job):
    job.program("raise SystemExit('bad input')")
    (job.base / "output" / "success").write_text("")
    assert job.run().cause(1) == "user script train.py exited with code 1: bad input"


def test_the_scripts_exit_code_is_kept_and_its_last_stderr_line_is_the_cause(job):
    r = job.program("import sys; print('x', file=sys.stderr); sys.exit(3)").run()
    assert r.cause(3) == "user script train.py exited with code 3: x"


def test_an_exception_is_the_first_line_and_the_traceback_follows(job):
    r = job.program("def f():\n    raise ValueError('learning rate must be positive')\nf()\n").run()
    assert r.cause(1) == "user script train.py exited with code 1: ValueError: learning rate must be positive"
    assert "Traceback (most recent call last)" in r.failure


def test_a_long_failure_keeps_the_cause_within_sagemakers_1024_characters(job):
    r = job.program("import sys\nprint('noise\\n' * 5000, file=sys.stderr)\n"
                    "raise RuntimeError('the cause ' + 'x' * 3000)\n").run()
    line = r.cause(1)
    assert line.startswith("user script train.py exited with code 1: RuntimeError: the cause xxx")
    assert len(line) == 1024 and line.endswith("...")


def test_a_script_killed_by_a_signal_exits_128_plus_its_number(job):
    r = job.program("import os, signal; os.kill(os.getpid(), signal.SIGKILL)").run()
    assert r.cause(137).startswith("user script train.py was killed by signal SIGKILL (exit 137)")


def test_stderr_that_is_not_utf8_still_gives_a_readable_cause(job):
    r = job.program("import sys\nsys.stderr.buffer.write(b'bad bytes \\xff\\xfe here\\n')\nsys.exit(2)\n").run()
    assert r.cause(2).startswith("user script train.py exited with code 2: bad bytes")


@pytest.mark.parametrize("name, text, cause", [  # every check: test_config.py
    ("hyperparameters.json", "{not json", "{config}/hyperparameters.json is not valid JSON"),
])
def test_a_bad_config_file_fails_before_user_code(job, name, text, cause):
    r = job.lay_out(hyperparameters={"entrypoint": "main.py"}, config_override={name: text},
                    channels={"training-code": {"main.py": "print('must not run')"}}).run()
    assert r.cause(1).startswith(cause.format(config=job.base / "input" / "config"))
    assert "must not run" not in r.logs


def test_a_declared_channel_that_is_missing_is_named_before_user_code(job):
    job.lay_out(hyperparameters={"entrypoint": "main.py"},
                channels={"training-code": {"main.py": "print('must not run')"}, "train": {}})
    (job.base / "input" / "data" / "train").rmdir()
    r = job.run()
    assert r.cause(1) == (f"channel 'train' is declared in inputdataconfig.json but "
                          f"{job.base}/input/data/train does not exist")
    assert "must not run" not in r.logs


FRAMEWORK = "from sm_entrypoint.program import run_user_program\n\ndef main():\n    run_user_program()\n"


def test_a_framework_module_runs_the_user_program(job, tmp_path):
    job.write_tree(tmp_path / "mods", {"my_framework.py": FRAMEWORK})
    job.program(job.ECHO_ARGS, epochs="3")
    r = job.run(env={"SAGEMAKER_TRAINING_MODULE": "my_framework:main", "PYTHONPATH": str(tmp_path / "mods")})
    r.ok()
    assert r.received["argv"] == ["--epochs", "3"]


@pytest.mark.parametrize("entrypoint, cause", [  # every refusal: test_program_resolve.py
    ("../x.py", "entrypoint '../x.py' is refused: it points outside {channel}"),
])
def test_a_bad_entrypoint_runs_nothing(job, entrypoint, cause):
    job.lay_out(hyperparameters={"entrypoint": entrypoint},
                channels={"training-code": {"main.py": "print('hi')"}, "x": {}})
    job.write_tree(job.base / "input" / "data", {"x.py": "print('escaped!')"})
    r = job.run()
    assert r.cause(1) == cause.format(channel=job.base / "input" / "data" / "training-code")
    assert "escaped!" not in r.logs


def tarball(path, members):
    """{name: text} regular files, plus escaping members: {name: ("sym" | "lnk", linkname)}."""
    with tarfile.open(path, "w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(body, tuple):
                info.type = tarfile.SYMTYPE if body[0] == "sym" else tarfile.LNKTYPE
                info.linkname = body[1]
                tar.addfile(info)
            else:
                info.size = len(body.encode())
                tar.addfile(info, io.BytesIO(body.encode()))
    return path


@pytest.mark.parametrize("evil", [{"../escaped.txt": "evil"}])  # every kind: test_source.py
def test_a_tarball_with_an_escaping_member_is_refused_before_extraction(job, tmp_path, evil):
    src = tarball(tmp_path / "src.tar.gz", {"train.py": "print('must not run')", **evil})
    job.lay_out(hyperparameters={"sagemaker_program": "train.py", "sagemaker_submit_directory": str(src)})
    r = job.run()
    assert r.cause(1).startswith("submitted tarball refused:")
    assert "must not run" not in r.logs
    assert not (job.base / "code" / "train.py").exists() and not (job.base / "escaped.txt").exists()


def test_a_submitted_tarball_is_extracted_into_the_code_folder(job, tmp_path):
    src = tarball(tmp_path / "sourcedir.tar.gz", {"train.py": job.ECHO_ARGS})
    job.lay_out(hyperparameters={"sagemaker_program": "train.py", "sagemaker_submit_directory": str(src),
                                 "hp1": "value1"})
    r = job.run()
    r.ok()
    assert r.received["argv"] == ["--hp1", "value1"] and r.received["cwd"] == str(job.base / "code")


def test_a_non_empty_code_folder_does_not_hide_the_submitted_tarball(job, tmp_path):
    """sagemaker-training silently skips the tarball when /opt/ml/code holds anything (#85, #222)."""
    src = tarball(tmp_path / "src.tar.gz", {"train.py": job.ECHO_ARGS})
    job.lay_out(hyperparameters={"sagemaker_program": "train.py", "sagemaker_submit_directory": str(src)},
                code={"train.py": "raise SystemExit('the stale copy ran')"})
    (tmp_path / "tmp").mkdir()
    r = job.run(env={"TMPDIR": str(tmp_path / "tmp")})
    r.ok()
    assert "is not empty: extracting the submitted source into" in r.logs
    assert r.received["cwd"].startswith(str(tmp_path / "tmp"))


def test_a_submitted_folder_is_run_in_place_and_not_written(job):
    job.program(job.ECHO_ARGS)
    before = sorted(p.name for p in (job.base / "code").iterdir())
    r = job.run()
    r.ok()
    assert sorted(p.name for p in (job.base / "code").iterdir()) == before


def test_a_host_that_never_resolves_fails_within_the_configured_time(job):
    job.lay_out(hosts=("algo-1", "algo-2.invalid"), hyperparameters={"entrypoint": "main.py"},
                channels={"training-code": {"main.py": "print('must not run')"}})
    r = job.run(env={"SM_ENTRYPOINT_HOST_WAIT_SECONDS": "1", "SM_ENTRYPOINT_BARRIER_PORT": "0"}, timeout_s=30)
    assert r.cause(1).startswith("host(s) algo-2.invalid never resolved within 1 s")
    assert "must not run" not in r.logs


@pytest.mark.parametrize("variable, value, rule", [("SM_ENTRYPOINT_HOST_WAIT_SECONDS", "soon", "a number of seconds"),
                                                   ("SM_ENTRYPOINT_BARRIER_PORT", "x", "a whole number")])
def test_a_bad_setting_exits_2_naming_it_in_the_failure_file(job, variable, value, rule):
    job.program("print('must not run')")
    (job.base / "output" / "success").write_text("")  # left over from an earlier attempt
    r = job.run(env={variable: value})
    assert r.cause(2) == f"train: {variable} must be {rule}, got {value!r}"
    assert "must not run" not in r.logs


def test_the_job_environment_reaches_the_script(job):
    script = ("import json, os\nenv = json.loads(os.environ['SM_TRAINING_ENV'])\n"
              "assert env['current_host'] == 'algo-1' and env['hosts'] == ['algo-1'], env\n"
              "assert os.environ['SM_CHANNEL_TRAIN'] == os.path.join(os.environ['SAGEMAKER_BASE_DIR'], 'input/data/train')\n")
    job.lay_out(hyperparameters={"entrypoint": "main.py"},
                channels={"training-code": {"main.py": script}, "train": {"a.csv": "1,2"}})
    job.run().ok()
