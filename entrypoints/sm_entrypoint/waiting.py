"""Bounded waits that say what they wait for: every wait in the entrypoint has a limit, and logs
while it lasts, so a job that waits is never silent and never waits for ever. A wait for several
hosts waits for all of them at once (`each`): adding a host adds no wait of its own."""

import logging
import time
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("sm_entrypoint")
LOG_EVERY_S = 10.0
FIRST_INTERVAL_S = 0.05  # the first tries come quickly (each second of polling is start latency), then slow down
MAX_AT_ONCE = 64  # hosts asked at the same time; beyond that they queue (each call is bounded on its own)


def poll(attempt, timeout_s, give_up, progress, interval_s=1.0, log_every_s=LOG_EVERY_S, log_at_once=False):
    """attempt() until it returns something other than None, which is returned. Between tries it
    sleeps FIRST_INTERVAL_S, doubled after each miss up to `interval_s`. While waiting,
    progress(elapsed seconds) is logged every `log_every_s` (and at the first miss if log_at_once);
    past `timeout_s`, give_up(elapsed) raises, or returns what the wait returns instead."""
    start = time.monotonic()
    last_log = start - log_every_s if log_at_once else start
    sleep_s = min(FIRST_INTERVAL_S, interval_s)
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
        time.sleep(sleep_s)
        sleep_s = min(sleep_s * 2, interval_s)


def each(hosts, call):
    """call(host) for every host at the same time, each bounded by `call` itself; returns
    {host: its result} once every call has returned. Where calls raised, the first host's error
    (in `hosts` order; it names its host) is raised once all are done, and the others are logged."""
    hosts = list(hosts)
    if len(hosts) <= 1:
        return {h: call(h) for h in hosts}
    with ThreadPoolExecutor(max_workers=min(len(hosts), MAX_AT_ONCE), thread_name_prefix="each-host") as pool:
        futures = {h: pool.submit(call, h) for h in hosts}
    errors = [f.exception() for f in futures.values() if f.exception() is not None]
    for error in errors[1:]:
        log.error("also: %s", error)
    if errors:
        raise errors[0]
    return {h: f.result() for h, f in futures.items()}
