"""`train`: read the job, run the one program it names, and end the way SageMaker expects:
exit 0 and no failure file, or a non-zero exit and a failure file whose first line is the cause."""

import logging
import os
import traceback

from . import cluster, config, environment, failure, program, signals
from .errors import JobError, exit_code_of
from .settings import Settings

log = logging.getLogger("sm_entrypoint")


def _job(settings):
    config.check(settings.base_dir)
    env = environment.load()
    hosts, current = list(env.hosts), env.current_host
    presence = None
    if len(hosts) > 1:
        presence = cluster.Presence(settings.barrier_port)
        cluster.wait_for_hosts(hosts, current, settings.barrier_port, settings.host_wait_s)
    plan = program.resolve(env, settings)
    with signals.forwarding() as forwarder:
        plan.run()
    # Marked now: from here on a stop request ends the job as the success it is (exit 0).
    failure.write_success(settings.success_file)
    signals.finish_on_stop()
    if forwarder.received:
        log.info("%s ended after a stop request", plan)
    if presence:
        presence.done()
        cluster.wait_until_others_finish(hosts, current, settings.barrier_port, settings.master_wait_s)


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
    try:
        _job(settings)
    except JobError as e:
        return _fail(settings, e.cause, e.detail, e.exit_code)
    except BaseException as e:  # noqa: BLE001 - every failure ends in a failure file
        cause = f"train failed: {type(e).__name__}: {' '.join(str(e).split()) or '(no message)'}"
        return _fail(settings, cause, traceback.format_exc(), exit_code_of(e))
    log.info("training finished")
    return 0


def _fail(settings, cause, detail, code):
    log.error("%s", failure.first_line(cause))
    try:
        failure.clear(settings.success_file)
        failure.write(settings.failure_file, cause, detail, settings.failure_limit)
    except OSError as e:
        log.error("could not write %s: %s", settings.failure_file, e)
    return code
