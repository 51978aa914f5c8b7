"""SIGTERM (a Spot interruption, `docker stop`, local mode stopping a host) reaches every process
the job started, so a user script can checkpoint; the toolkit forwards nothing (its issues
#125 and #173)."""

import contextlib
import logging
import os
import signal

import psutil

log = logging.getLogger("sm_entrypoint")
FORWARDED = (signal.SIGTERM, signal.SIGINT)


class Forwarder:
    def __init__(self):
        self.received = None

    def __call__(self, signum, _frame):
        self.received = signum
        name = signal.Signals(signum).name
        children = psutil.Process(os.getpid()).children(recursive=True)
        log.info("received %s: forwarding it to %d process(es) and waiting for them", name, len(children))
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.send_signal(signum)


@contextlib.contextmanager
def forwarding():
    """Within the block, SIGTERM and SIGINT go to every descendant instead of stopping us."""
    forwarder = Forwarder()
    previous = {s: signal.signal(s, forwarder) for s in FORWARDED}
    try:
        yield forwarder
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def ignore_stop_requests():
    """Once this host's work has succeeded, a stop request changes nothing: all that is left is to
    wait for the others (which installs its own handler) and exit 0. Without this, a stop landing
    just as we exit (the others saw us done, left, and local mode stopped us) gives 143."""
    for s in FORWARDED:
        signal.signal(s, signal.SIG_IGN)
