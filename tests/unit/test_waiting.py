"""sm_entrypoint.waiting: every wait ends, with the answer, or with give_up at the limit; a wait for
several hosts waits for all at once."""

import logging
import time

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


def test_the_first_tries_come_quickly_then_slow_down_to_the_interval(monkeypatch):
    sleeps = []
    monkeypatch.setattr(waiting.time, "sleep", sleeps.append)
    answers = iter([None] * 6 + ["up"])
    assert waiting.poll(lambda: next(answers), 5, give_up=None, progress=str, interval_s=0.5) == "up"
    assert sleeps == [waiting.FIRST_INTERVAL_S, 0.1, 0.2, 0.4, 0.5, 0.5]


def test_each_calls_for_every_host_at_the_same_time():
    def slow(host):
        time.sleep(0.3)
        return host.upper()

    start = time.monotonic()
    assert waiting.each([f"algo-{i}" for i in range(1, 9)], slow) == {f"algo-{i}": f"ALGO-{i}" for i in range(1, 9)}
    assert time.monotonic() - start < 1.2  # one after the other: 2.4 s


def test_each_raises_the_first_hosts_error_once_every_call_is_done_and_logs_the_others(caplog):
    finished = []

    def call(host):
        time.sleep(0.2 if host == "algo-4" else 0)
        finished.append(host)
        if host in ("algo-2", "algo-3"):
            raise JobError(f"cannot reach host {host}")
        return True

    with caplog.at_level(logging.INFO, logger="sm_entrypoint"), pytest.raises(JobError, match="host algo-2$"):
        waiting.each(["algo-2", "algo-3", "algo-4"], call)
    assert sorted(finished) == ["algo-2", "algo-3", "algo-4"]
    assert "also: cannot reach host algo-3" in caplog.text


def test_each_with_one_host_or_none_calls_in_place():
    assert waiting.each([], lambda h: 1 / 0) == {}
    assert waiting.each(["algo-2"], str.upper) == {"algo-2": "ALGO-2"}
