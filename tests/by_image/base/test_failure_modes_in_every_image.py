"""The failure modes every image shares, tried on purpose in each: a non-zero exit, the cause as the
first line of /opt/ml/output/failure, and nothing changed outside the job's folders. (The full list
runs against custom-framework: tests/by_image/custom-framework/test_custom_framework_failures.py.)"""

from smimages.testing.harness import program_job, run_job


def test_a_script_exiting_with_3_exits_3_saying_so(image, tmp_path):
    [r] = run_job(image, program_job(tmp_path, "import sys; print('bad data', file=sys.stderr); sys.exit(3)"))
    assert r.cause(3) == "user script train.py exited with code 3: bad data"


def test_a_script_killed_by_sigkill_exits_137_naming_the_signal(image, tmp_path):
    [r] = run_job(image, program_job(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"))
    assert r.cause(137).startswith("user script train.py was killed by signal SIGKILL (exit 137)")


def test_malformed_hyperparameters_json_fails_before_user_code(image, tmp_path):
    job = program_job(tmp_path, "print('must not run')", config_override={"hyperparameters.json": "{not json"})
    [r] = run_job(image, job)
    assert r.cause().startswith("/opt/ml/input/config/hyperparameters.json is not valid JSON")
    assert "must not run" not in r.logs


def test_a_declared_channel_that_is_missing_is_named_before_user_code(image, tmp_path):
    job = program_job(tmp_path, "print('must not run')", channels={"train": {}})
    (job.tree("algo-1") / "input" / "data" / "train").rmdir()
    [r] = run_job(image, job)
    assert r.cause() == "channel 'train' is declared in inputdataconfig.json but /opt/ml/input/data/train does not exist"
    assert "must not run" not in r.logs
