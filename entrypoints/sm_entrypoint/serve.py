"""`serve`: the shared model server (sm_entrypoint.serving) on port 8080 or SAGEMAKER_BIND_TO_PORT.
A setting or script that cannot work ends it at once with one line that says why."""

import logging

log = logging.getLogger("sm_entrypoint")


def run():
    from .serving.errors import ConfigError
    from .serving.settings import ServingSettings

    try:
        settings = ServingSettings.from_env()
        try:
            from .serving import runner
        except ImportError as e:
            raise ConfigError(f"this image cannot serve models: {e} (the server needs gunicorn)") from None
        runner.run(settings)
    except ConfigError as e:
        log.error("serve cannot start: %s", e)
        return 2
    return 0
