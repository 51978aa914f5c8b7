"""How a job's end is marked in /opt/ml/output. The failure file: SageMaker shows its first 1024
characters as the job's FailureReason, so the cause goes on the first line (never over 1024
characters) and the detail after it. The success file: an empty `success`, as sagemaker-training's
`files.write_success_file()` writes it; tools written for AWS's images look for it in
output.tar.gz. A job leaves exactly one of the two."""

import os

REASON_LIMIT = 1024


def first_line(text, limit=REASON_LIMIT):
    """One line of at most `limit` characters: the cause as SageMaker will show it."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def write(path, cause, detail="", limit=16384):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = first_line(cause) + "\n"
    if detail:
        text += "\n" + detail.rstrip() + "\n"
    if len(text) > limit:  # keep the cause and the end of the detail, where the error is
        text = text[: REASON_LIMIT + 1] + "\n...\n" + text[-(limit - REASON_LIMIT - 8):]
    with open(path, "w", encoding="utf-8", errors="replace") as f:
        f.write(text)


def write_success(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w"):
        pass


def clear(path):
    """Remove an old marker: a restart may find the one an earlier run left."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
