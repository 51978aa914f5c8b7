"""`serve`: the shared model server (sm_entrypoint.serving) on port 8080 or SAGEMAKER_BIND_TO_PORT.
A setting or script that cannot work ends it at once with one line that says why."""

import logging

log = logging.getLogger("sm_entrypoint")


def one_line(text):
    """A cause as one log line: the first line a log viewer shows must say it all."""
    return " ".join(str(text).split())


def run():
    from .errors import JobError
    from .serving.errors import ConfigError
    from .serving.settings import ServingSettings

    try:
        settings = ServingSettings.from_env()
        try:
            from .serving import multi_model, runner
        except ImportError as e:
            raise ConfigError(f"this image cannot serve models: {e} (the server needs gunicorn)") from None
        (multi_model if settings.multi_model else runner).run(settings)
    except (ConfigError, JobError) as e:
        log.error("serve cannot start: %s", one_line(getattr(e, "cause", e)))
        if isinstance(e, ConfigError) and getattr(e, "detail", ""):
            log.info("%s", e.detail.rstrip())
        return 2
    return 0
