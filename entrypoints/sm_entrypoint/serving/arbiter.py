"""gunicorn's arbiter, with its one unsafe habit removed.

gunicorn reaps its workers in the SIGCHLD handler and, when one failed to boot, raises HaltServer
from there. A Python signal handler runs wherever the main thread happens to be, so that exception
can land inside the logging module's fork hook that the arbiter runs after forking the next worker:
Python ignores it there ('Exception ignored in: <function _releaseLock>'), the module's lock stays
held, the halt is lost, and the arbiter hangs for ever on its next log line, a server that cannot
serve and never exits (seen about once in 150 starts of a model whose model_fn fails, 2 workers).

Here the handler still reaps at once but only records the halt; the main loop raises it where
gunicorn expects it (before it would manage its workers), and the stop that follows is gunicorn's own.

gunicorn also halts whenever any worker exits with 3 ("worker failed to boot") or 4 ("app failed
to load"), even one that had served for hours and whose user code happened to exit with that code:
the whole server stopped over one request. Here gunicorn's own check never fires (the codes below
still exit as 3 and 4, exit statuses being taken mod 256, but never equal the status the arbiter
reads); the server's child_exit hook (runner.py) decides instead, from whether that worker had
loaded the model.
"""

from gunicorn.arbiter import Arbiter
from gunicorn.errors import HaltServer


class SignalSafeArbiter(Arbiter):
    WORKER_BOOT_ERROR = 256 + Arbiter.WORKER_BOOT_ERROR
    APP_LOAD_ERROR = 256 + Arbiter.APP_LOAD_ERROR

    def __init__(self, app):
        super().__init__(app)
        self.pending_halt = None

    def handle_chld(self, sig, frame):
        while True:  # reap_workers stops at the first failed boot: reap the rest too
            try:
                self.reap_workers()
                break
            except HaltServer as halt:
                self.pending_halt = self.pending_halt or halt
        self.wakeup()

    def manage_workers(self):
        if self.pending_halt:
            halt, self.pending_halt = self.pending_halt, None
            raise halt
        super().manage_workers()
