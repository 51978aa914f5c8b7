"""`train`: read the job, run the one program it names, and end the way SageMaker expects:
exit 0 and no failure file, or a non-zero exit and a failure file whose first line is the cause."""

import logging
import os
import traceback

from . import cluster, config, environment, failure, program, signals
from .errors import JobError, exit_code_of
from .settings import Settings

log = logging.getLogger("sm_entrypoint")


FAILED_LINGER_S = 5.0  # a failed host answers "failed" this long at most for the others to read


class Peers:
    """The other hosts of a multi-host job, once they have all answered: told how this host's work
    ended, and waited for (bounded) before it leaves. A failed host waits briefly: long enough for
    hosts already waiting (they ask every 0.5 s) to read its cause, never so long that it holds up
    a job the platform ends when a host exits (local mode stops every host then)."""

    def __init__(self, hosts, current, settings):
        self.hosts, self.current, self.settings = hosts, current, settings
        self.presence = cluster.Presence(settings.barrier_port)
        cluster.wait_for_hosts(hosts, current, settings.barrier_port, settings.host_wait_s)

    def finish(self, cause=None):
        """Say done (or failed, with its cause) and wait until the others are done, failed or
        gone; a host that failed fails this one too, unless this one failed first."""
        if cause is None:
            self.presence.done()
        else:
            self.presence.failed(failure.first_line(cause))
        bound = self.settings.master_wait_s if cause is None else FAILED_LINGER_S
        cluster.wait_until_others_finish(self.hosts, self.current, self.settings.barrier_port, bound,
                                         own_failure=cause is not None)


def _job(settings, job):
    config.check(settings.base_dir)
    env = environment.load()
    hosts = list(env.hosts)
    if len(hosts) > 1:
        job["peers"] = Peers(hosts, env.current_host, settings)
    plan = program.resolve(env, settings)
    with signals.forwarding() as forwarder:
        plan.run()
    # Marked now: from here on a stop request ends the job as the success it is (exit 0).
    failure.write_success(settings.success_file)
    signals.finish_on_stop()
    if forwarder.received:
        log.info("%s ended after a stop request", plan)
    if "peers" in job:
        job.pop("peers").finish()


def run():
    """The whole `train` command; returns the exit code."""
    try:
        settings = Settings.from_env()
    except ValueError as e:  # a bad knob: said like any other failure, before anything runs
        return _fail(Settings.for_reporting(), f"train: {e}", "", 2)
    failure.clear(settings.failure_file)
    failure.clear(settings.success_file)
    if os.environ.get("SM_IMAGE_NOTICE"):  # what an image wants every job log to say (a fallback build)
        log.warning("image notice: %s", os.environ["SM_IMAGE_NOTICE"])
    job = {}  # what _job has set up that a failure must still use: the other hosts
    try:
        _job(settings, job)
    except JobError as e:
        return _fail(settings, e.cause, e.detail, e.exit_code, job.get("peers"))
    except BaseException as e:  # noqa: BLE001 - every failure ends in a failure file
        cause = f"train failed: {type(e).__name__}: {' '.join(str(e).split()) or '(no message)'}"
        return _fail(settings, cause, traceback.format_exc(), exit_code_of(e), job.get("peers"))
    log.info("training finished")
    return 0


def _fail(settings, cause, detail, code, peers=None):
    log.error("%s", failure.first_line(cause))
    try:
        failure.clear(settings.success_file)
        failure.write(settings.failure_file, cause, detail, settings.failure_limit)
    except OSError as e:
        log.error("could not write %s: %s", settings.failure_file, e)
    if peers is not None:  # the others learn why (a plain host of a heterogeneous cluster fails too)
        signals.finish_on_stop(code)  # a stop request meanwhile keeps the failure's own code
        try:
            peers.finish(cause)
        except JobError as e:  # cannot happen with own_failure; a bug must not hide the cause above
            log.error("%s", e.cause)
    return code
