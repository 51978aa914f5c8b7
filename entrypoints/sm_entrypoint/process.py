"""Running a user process: its stdout passes straight through, its stderr is copied through
byte for byte (whatever the encoding) while the last lines are kept for the failure file."""

import collections
import os
import signal
import subprocess
import sys
import threading

TAIL_LINES = 40


class Result:
    def __init__(self, returncode, stderr_tail, oom_killed=False):
        self.returncode = returncode
        self.stderr_tail = stderr_tail  # list of str, decoded leniently
        self.oom_killed = oom_killed

    @property
    def exit_code(self):
        """What we exit with: the process's own code, or 128+N when signal N killed it."""
        rc = self.returncode
        return 128 - rc if rc < 0 else rc

    def describe(self, what):
        """The cause in plain words, for the failure file's first line."""
        rc = self.returncode
        if rc < 0:
            name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
            cause = f"{what} was killed by signal {name} (exit {self.exit_code})"
            if self.oom_killed:
                cause += ": the container ran out of memory (the kernel's OOM killer ended it)"
        else:
            cause = f"{what} exited with code {rc}"
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


def _tee(stream, sink, tail):
    """Copy `stream` to `sink` as it comes, keeping the last lines in `tail`."""
    partial = b""
    for chunk in iter(lambda: stream.read1(65536), b""):
        sink.write(chunk)
        sink.flush()
        lines = (partial + chunk).split(b"\n")
        partial = lines.pop()
        tail.extend(line.decode("utf-8", errors="replace") for line in lines)
    if partial:
        tail.append(partial.decode("utf-8", errors="replace"))


def run(cmd, env=None, cwd=None):
    """Run `cmd` to its end in a session of its own (so signals are ours to forward)."""
    oom_before = oom_kill_count()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stderr=subprocess.PIPE, start_new_session=True)
    tail = collections.deque(maxlen=TAIL_LINES)
    reader = threading.Thread(target=_tee, args=(proc.stderr, sys.stderr.buffer, tail), daemon=True)
    reader.start()
    while True:
        try:
            returncode = proc.wait()
            break
        except InterruptedError:  # a forwarded signal interrupted the wait; wait on
            continue
    reader.join(timeout=5)
    return Result(returncode, list(tail), oom_killed=oom_kill_count() > oom_before)


def python():
    """The interpreter user scripts run with: the image's own."""
    return os.environ.get("SM_ENTRYPOINT_PYTHON", sys.executable)
