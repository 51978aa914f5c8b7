"""The failure file and exit codes, without Docker."""

from sm_entrypoint import failure
from sm_entrypoint.errors import JobError, exit_code_of


def test_cause_is_one_line_within_1024_characters(tmp_path):
    path = tmp_path / "output" / "failure"
    failure.write(str(path), "bad\nthing " + "x" * 5000, detail="line 1\nline 2")
    text = path.read_text()
    first = text.splitlines()[0]
    assert first.startswith("bad thing xxx") and len(first) == 1024 and first.endswith("...")
    assert text.endswith("line 1\nline 2\n")


def test_long_detail_keeps_the_cause_and_the_end(tmp_path):
    path = tmp_path / "failure"
    failure.write(str(path), "the cause", detail="start\n" + "y" * 50000 + "\nthe last line", limit=4096)
    text = path.read_text()
    assert text.startswith("the cause\n") and text.endswith("the last line\n") and len(text) <= 4096


def test_clear_removes_an_old_failure_and_tolerates_none(tmp_path):
    path = tmp_path / "failure"
    path.write_text("old")
    failure.clear(str(path))
    failure.clear(str(path))
    assert not path.exists()


class WithReturnCode(Exception):
    return_code = 7


def test_exit_codes_are_never_zero_for_a_failure():
    assert exit_code_of(FileNotFoundError("x")) == 1  # errno None: the toolkit exits 0 here
    assert exit_code_of(SystemExit(0)) == 1
    assert exit_code_of(SystemExit(4)) == 4
    assert exit_code_of(SystemExit("message")) == 1
    assert exit_code_of(WithReturnCode()) == 7
    assert exit_code_of(JobError("x", exit_code=0)) == 1
    assert exit_code_of(JobError("x", exit_code=3)) == 3
