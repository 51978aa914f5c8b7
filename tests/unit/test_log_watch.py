"""The harness's check of container logs: which lines fail a test, and when they are expected."""

from smimages.testing.harness import LogWatch

CLEAN = "2026-11-30 07:00:00,000 [sm-entrypoint] INFO training finished\nerror rate 0.1 (lower case is data)\n"
TRACEBACK = "Traceback (most recent call last):\n  File \"train.py\", line 1\nValueError: bad\n"
GUNICORN = "[2026-11-30 07:11:09 +0000] [16] [ERROR] Worker (pid:26) exited with code 1\n"


def test_clean_logs_pass_and_the_first_error_line_of_each_container_is_named():
    watch = LogWatch()
    watch.keep("algo-1", CLEAN)
    assert watch.unexpected() == []
    watch.keep("algo-2", CLEAN + TRACEBACK)
    watch.keep("serve-1", GUNICORN + TRACEBACK)
    assert watch.unexpected() == [("algo-2", "Traceback (most recent call last):"), ("serve-1", GUNICORN.strip())]


def test_expected_errors_pass_until_the_next_test_starts():
    watch = LogWatch()
    watch.keep("algo-1", TRACEBACK)
    watch.expect()
    assert watch.unexpected() == []
    watch.start()
    assert watch.logs == [] and not watch.expected
    watch.keep("algo-1", TRACEBACK)
    assert watch.unexpected() == [("algo-1", "Traceback (most recent call last):")]
