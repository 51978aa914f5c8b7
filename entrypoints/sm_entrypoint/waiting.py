"""Bounded waits that say what they wait for: every wait in the entrypoint has a limit, and logs
while it lasts, so a job that waits is never silent and never waits for ever."""

import logging
import time

log = logging.getLogger("sm_entrypoint")
LOG_EVERY_S = 10.0


def poll(attempt, timeout_s, give_up, progress, interval_s=1.0, log_every_s=LOG_EVERY_S, log_at_once=False):
    """attempt() until it returns something other than None, which is returned. While waiting,
    progress(elapsed seconds) is logged every `log_every_s` (and at the first miss if log_at_once);
    past `timeout_s`, give_up(elapsed) raises, or returns what the wait returns instead."""
    start = time.monotonic()
    last_log = start - log_every_s if log_at_once else start
    while True:
        result = attempt()
        if result is not None:
            return result
        now = time.monotonic()
        if now - start > timeout_s:
            return give_up(now - start)
        if now - last_log >= log_every_s:
            last_log = now
            log.info("%s", progress(now - start))
        time.sleep(interval_s)
