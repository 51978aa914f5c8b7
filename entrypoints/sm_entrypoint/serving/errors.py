"""Failures that answer with their own HTTP status; anything else raised in user code is a 500."""


class ServingError(Exception):
    status = 500

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class BadRequest(ServingError):
    """The body cannot be decoded as its content type says."""

    status = 400


class PayloadTooLarge(ServingError):
    status = 413


class UnsupportedMediaType(ServingError):
    """A Content-Type or Accept the handlers cannot deal with."""

    status = 415


class NotFound(ServingError):
    status = 404


class MethodNotAllowed(ServingError):
    status = 405


class Conflict(ServingError):
    """A multi-model endpoint asked to load a model it already has."""

    status = 409


class InsufficientStorage(ServingError):
    """A model that does not fit in the memory left: SageMaker then unloads others and retries."""

    status = 507


class ConfigError(Exception):
    """The server cannot start: a setting or the user's script is wrong. Said in one line."""


def status_of(exc):
    """Our errors carry their status; so do sagemaker-inference's (`status_code`), which scripts
    written for AWS's images raise. Everything else is the user's code failing: 500."""
    if isinstance(exc, ServingError):
        return exc.status
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) and 400 <= code <= 599 else 500


def reason_of(exc):
    """One line that says what went wrong: the exception's first line, with its type."""
    text = str(getattr(exc, "reason", None) or getattr(exc, "message", None) or exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # MXNet's errors carry a C++ traceback first and the cause last.
    first = (lines[-1] if lines[0].startswith("Traceback") else lines[0]) if lines else ""
    if isinstance(exc, ServingError) or status_of(exc) != 500:
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
