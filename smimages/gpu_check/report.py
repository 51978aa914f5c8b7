"""The report: one Result per check, the lines printed for them, the exit code; and how a child
process hands its result to the parent (MARK, then one line of JSON, in its output)."""

import json
import time
from dataclasses import dataclass, field

MARK = "GPU_CHECK_RESULT "  # a child's result: this prefix, then one line of JSON
PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Result:
    name: str
    status: str  # PASS, FAIL or SKIP
    summary: str
    seconds: float = 0.0
    detail: list = field(default_factory=list)  # a failure's last log lines, shown under it


def failed(name, started, summary, run_=None, detail=None):
    """A FAIL since `started` (time.monotonic()); its detail, unless given, the end of run_'s output."""
    return Result(name, FAIL, summary, time.monotonic() - started,
                  detail if detail is not None else (tail(run_.output) if run_ else []))


def format_line(result):
    return f"{result.status:<4}  {result.name:<11}  {result.summary} ({result.seconds:.1f} s)"


def format_report(results, seconds):
    """The lines after the header: one per check (a failure's detail indented under it), a total."""
    lines = []
    for r in results:
        lines.append(format_line(r))
        lines.extend(f"        | {line}" for line in r.detail)
    counts = {s: sum(r.status == s for r in results) for s in (PASS, FAIL, SKIP)}
    lines.append(f"gpu-check: {counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped "
                 f"in {seconds:.0f} s")
    return lines


def exit_code(results):
    """1 when a check that ran failed; a SKIP is not a failure."""
    return 1 if any(r.status == FAIL for r in results) else 0


def tail(text, count=8):
    """The last `count` non-empty lines, each cut to 200 characters: what a failure shows."""
    lines = [ln.rstrip()[:200] for ln in text.splitlines() if ln.strip()]
    return lines[-count:]


def say(result):
    """In a child: print its result for the parent's `marked`."""
    print(MARK + json.dumps(result), flush=True)


def marked(output):
    """The last result a child printed (MARK + JSON, after any prefix a launcher adds, such as
    horovodrun's `[0]<stdout>:`), or None."""
    found = None
    for line in output.splitlines():
        at = line.find(MARK)
        if at >= 0:
            try:
                found = json.loads(line[at + len(MARK):])
            except ValueError:
                continue
    return found
