"""The one error type a job ends with: a plain-words cause, the detail, and an exit code."""


class JobError(Exception):
    """A failure the job reports: `cause` becomes the first line of the failure file."""

    def __init__(self, cause, detail="", exit_code=1):
        super().__init__(cause)
        self.cause = cause
        self.detail = detail
        self.exit_code = exit_code if exit_code else 1  # a failure never exits 0


def exit_code_of(exc):
    """The exit code an arbitrary exception maps to: its own code where it has one, never 0."""
    if isinstance(exc, JobError):
        return exc.exit_code
    if isinstance(exc, SystemExit):
        code = exc.code
        return code if isinstance(code, int) and code != 0 else 1
    # sagemaker_training.errors.ExecuteUserScriptError carries the user process's code.
    code = getattr(exc, "return_code", None)
    if isinstance(code, int) and code != 0:
        return code if code > 0 else 128 - code
    return 1
