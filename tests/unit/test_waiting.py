"""sm_entrypoint.waiting.poll: every wait ends, with the answer, or with give_up at the limit."""

import logging

import pytest
from sm_entrypoint import waiting
from sm_entrypoint.errors import JobError


def test_returns_the_first_answer_that_is_not_none():
    answers = iter([None, None, "key"])
    assert waiting.poll(lambda: next(answers), 5, give_up=None, progress=str, interval_s=0) == "key"


def test_gives_up_after_the_limit_and_logs_progress_while_waiting(caplog):
    def give_up(elapsed):
        raise JobError(f"gave up after {elapsed:.1f} s")

    with caplog.at_level(logging.INFO, logger="sm_entrypoint"), pytest.raises(JobError, match="gave up after 0.2"):
        waiting.poll(lambda: None, 0.2, give_up, lambda e: f"still waiting ({e:.2f} s)", interval_s=0.01,
                     log_every_s=0.05)
    assert 2 <= sum("still waiting" in r.message for r in caplog.records) <= 5


def test_give_up_may_return_a_fallback_instead_of_raising():
    assert waiting.poll(lambda: None, 0.05, lambda e: "fallback", str, interval_s=0.01) == "fallback"
