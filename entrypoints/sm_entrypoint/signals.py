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
_received = None  # the last stop request inside forwarding(), for waits that run no process


def stop_requested():
    """The signal number of a stop request received inside forwarding(), else None: a wait that
    has no process of its own to pass the request on to (an MPI worker host) ends on it."""
    return _received


class Forwarder:
    def __init__(self):
        self.received = None

    def __call__(self, signum, _frame):
        global _received
        self.received = _received = signum
        name = signal.Signals(signum).name
        children = psutil.Process(os.getpid()).children(recursive=True)
        log.info("received %s: forwarding it to %d process(es) and waiting for them", name, len(children))
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.send_signal(signum)


@contextlib.contextmanager
def forwarding():
    """Within the block, SIGTERM and SIGINT go to every descendant instead of stopping us."""
    global _received
    _received = None
    forwarder = Forwarder()
    previous = {s: signal.signal(s, forwarder) for s in FORWARDED}
    try:
        yield forwarder
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def finish_on_stop(code=0):
    """Once the job's work has ended (succeeded, or failed with `code` and its failure file written),
    a stop request (local mode stops every host as soon as one exits) ends the job as it stands,
    instead of killing it with the signal's code."""

    def stop(signum, _frame):
        log.info("received %s after this host's work was over: exiting %d", signal.Signals(signum).name, code)
        logging.shutdown()
        os._exit(code)

    for s in FORWARDED:
        signal.signal(s, stop)
