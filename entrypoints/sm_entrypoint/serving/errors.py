"""Failures that answer with their own HTTP status; anything else raised in user code is a 500."""


class ServingError(Exception):
    status = 500
    kind = "InternalServerException"  # MMS's and TorchServe's name for it, the "type" of a JSON error

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class BadRequest(ServingError):
    """The body cannot be decoded as its content type says."""

    status = 400
    kind = "BadRequestException"


class PayloadTooLarge(ServingError):
    status = 413
    kind = "RequestEntityTooLargeException"


class UnsupportedMediaType(ServingError):
    """A Content-Type or Accept the handlers cannot deal with."""

    status = 415
    kind = "UnsupportedMediaTypeException"


class NotFound(ServingError):
    status = 404
    kind = "ModelNotFoundException"


class MethodNotAllowed(ServingError):
    status = 405
    kind = "MethodNotAllowedException"


class Conflict(ServingError):
    """A multi-model endpoint asked to load a model it already has."""

    status = 409
    kind = "ConflictStatusException"


class InsufficientStorage(ServingError):
    """A model that does not fit in the memory left: SageMaker then unloads others and retries."""

    status = 507
    kind = "InsufficientStorageException"


class ConfigError(Exception):
    """The server cannot start: a setting or the user's script is wrong. Said in one line."""


def status_of(exc):
    """Our errors carry their status; so do sagemaker-inference's (`status_code`), which scripts
    written for AWS's images raise. Everything else is the user's code failing: 500."""
    if isinstance(exc, ServingError):
        return exc.status
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) and 400 <= code <= 599 else 500


def kind_of(exc):
    """The "type" of a JSON error, as MMS and TorchServe name theirs."""
    return exc.kind if isinstance(exc, ServingError) else "InternalServerException"


def reason_of(exc):
    """One line that says what went wrong: the exception's first line, with its type."""
    text = str(getattr(exc, "reason", None) or getattr(exc, "message", None) or exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # MXNet's errors carry a C++ traceback first and the cause last.
    first = (lines[-1] if lines[0].startswith("Traceback") else lines[0]) if lines else ""
    if isinstance(exc, ServingError) or status_of(exc) != 500:
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
