"""The failure modes every image shares, tried on purpose in each: a non-zero exit, the cause as the
first line of /opt/ml/output/failure, and nothing changed outside the job's folders. (Every cause
a job can end with is tested without Docker in tests/unit: test_train.py, test_config.py,
test_program_resolve.py.)"""

from smimages.testing.harness import program_job, run_job


def test_a_script_exiting_with_3_exits_3_saying_so(image, tmp_path):
    [r] = run_job(image, program_job(tmp_path, "import sys; print('bad data', file=sys.stderr); sys.exit(3)"))
    assert r.cause(3) == "user script train.py exited with code 3: bad data"


def test_a_script_killed_by_sigkill_exits_137_naming_the_signal(image, tmp_path):
    [r] = run_job(image, program_job(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"))
    assert r.cause(137).startswith("user script train.py was killed by signal SIGKILL (exit 137)")
