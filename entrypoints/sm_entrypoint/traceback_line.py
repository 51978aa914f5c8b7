"""The line that says what went wrong in a process's stderr: the exception line that ends its last
Python traceback (`ValueError: learning rate must be positive`), else its last meaningful line.

The very last line is often not the cause: after a traceback, torch may warn that a process group
was not destroyed, gloo may print `terminate called ...`, and launchers print banners of dashes."""

import re

TRACEBACK = "Traceback (most recent call last):"
# `Name: message` or a bare `Name`, as Python prints an exception (dotted for module classes).
EXCEPTION = re.compile(r"[A-Za-z_][\w.]*(: |:?$)")
# What carries no cause: empty lines and rows of dashes or equals signs (mpirun's, torchrun's).
DECORATION = re.compile(r"^[\s=*#-]*$")


def exception_line(lines, ignore=()):
    """The exception line of the last traceback in `lines` whose exception does not start with one
    of `ignore` (a launcher's own traceback), or None where there is none."""
    found, in_traceback = None, False
    for line in lines:
        text = line.rstrip()
        if text.strip() == TRACEBACK:
            in_traceback = True
        elif in_traceback and text and not text[0].isspace() and EXCEPTION.match(text):
            in_traceback = False  # a chained exception starts a traceback of its own
            if not text.startswith(tuple(ignore)):
                found = text
    return found


def last_meaningful_line(lines):
    """The last line that is not empty and not a row of dashes, stripped; '' where there is none."""
    for line in reversed(lines):
        if not DECORATION.match(line):
            return line.strip()
    return ""


def error_line(lines, ignore=()):
    """What went wrong, in one line: the last traceback's exception, else the last meaningful line."""
    return exception_line(lines, ignore) or last_meaningful_line(lines)
