"""Running a user process: its stdout passes straight through, its stderr is copied through
byte for byte (whatever the encoding) while the last lines are kept for the failure file (and,
more of them, for the launchers' parsers: mpirun prints a rank's traceback above its banners)."""

import collections
import os
import signal
import subprocess
import sys
import threading

TAIL_LINES = 40  # what the failure file's detail shows
KEPT_LINES = 5000  # what the parsers see: many ranks may print after the first one failed
KEPT_CHARS = 2 * 1024 * 1024  # ... and never more than this, however long the lines
LINE_BYTES = 16384  # a line that never ends (a progress bar redrawn with \r) is cut here


class Result:
    def __init__(self, returncode, stderr_tail, oom_killed=False, stderr_lines=None):
        self.returncode = returncode
        self.stderr_tail = stderr_tail  # list of str, decoded leniently
        self.oom_killed = oom_killed
        self.stderr_lines = stderr_tail if stderr_lines is None else stderr_lines  # a longer tail

    @property
    def exit_code(self):
        """What we exit with: the process's own code, or 128+N when signal N killed it."""
        rc = self.returncode
        return 128 - rc if rc < 0 else rc

    def outcome(self):
        """How the process ended, in plain words: "exited with code 1", "was killed by ..."."""
        rc = self.returncode
        if rc < 0:
            name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
            cause = f"was killed by signal {name} (exit {self.exit_code})"
            if self.oom_killed:
                cause += ": the container ran out of memory (the kernel's OOM killer ended it)"
            return cause
        return f"exited with code {rc}"

    def describe(self, what):
        """The cause in plain words, for the failure file's first line."""
        cause = f"{what} {self.outcome()}"
        last = self.last_error_line()
        return f"{cause}: {last}" if last else cause

    def last_error_line(self):
        for line in reversed(self.stderr_tail):
            if line.strip():
                return line.strip()
        return ""


def oom_kill_count():
    """How many processes the kernel's OOM killer has ended in this container's cgroup."""
    for path, key in (("/sys/fs/cgroup/memory.events", "oom_kill"),
                      ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill")):
        try:
            with open(path) as f:
                for line in f:
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0


class Tail:
    """The last lines of a stream, bounded in number and in characters."""

    def __init__(self, max_lines=KEPT_LINES, max_chars=KEPT_CHARS):
        self.lines, self.chars = collections.deque(), 0
        self.max_lines, self.max_chars = max_lines, max_chars

    def append(self, raw):
        line = raw[:LINE_BYTES].decode("utf-8", errors="replace")
        self.lines.append(line)
        self.chars += len(line)
        while len(self.lines) > self.max_lines or (self.chars > self.max_chars and len(self.lines) > 1):
            self.chars -= len(self.lines.popleft())


def _tee(stream, sink, tail):
    """Copy `stream` to `sink` as it comes, keeping the last lines in `tail` (a Tail)."""
    partial = b""
    for chunk in iter(lambda: stream.read1(65536), b""):
        sink.write(chunk)
        sink.flush()
        lines = (partial + chunk).split(b"\n")
        partial = lines.pop()
        if len(partial) > LINE_BYTES:  # no newline for this long: keep it as a line, bounded
            lines.append(partial)
            partial = b""
        for line in lines:
            tail.append(line)
    if partial:
        tail.append(partial)


class Running:
    """A process started by start(): its stderr copied through and kept while it runs."""

    def __init__(self, proc, reader, tail, oom_before):
        self.proc, self._reader, self._tail, self._oom_before = proc, reader, tail, oom_before

    def poll(self):
        return self.proc.poll()

    def wait(self):
        """Until it ends -> its Result."""
        while True:
            try:
                returncode = self.proc.wait()
                break
            except InterruptedError:  # a forwarded signal interrupted the wait; wait on
                continue
        self._reader.join(timeout=5)
        lines = list(self._tail.lines)
        return Result(returncode, lines[-TAIL_LINES:], oom_killed=oom_kill_count() > self._oom_before,
                      stderr_lines=lines)

    def end(self, grace_s=10.0):
        """SIGTERM to its whole session, SIGKILL after `grace_s`; -> its Result."""
        for signum, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, signum)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                continue
        return self.wait()


def start(cmd, env=None, cwd=None):
    """Start `cmd` in a session of its own (so signals are ours to forward) -> Running."""
    oom_before = oom_kill_count()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stderr=subprocess.PIPE, start_new_session=True)
    tail = Tail()
    reader = threading.Thread(target=_tee, args=(proc.stderr, sys.stderr.buffer, tail), daemon=True)
    reader.start()
    return Running(proc, reader, tail, oom_before)


def run(cmd, env=None, cwd=None):
    """Run `cmd` to its end in a session of its own -> its Result."""
    return start(cmd, env, cwd).wait()


def python():
    """The interpreter user scripts run with: the image's own."""
    return os.environ.get("SM_ENTRYPOINT_PYTHON", sys.executable)
