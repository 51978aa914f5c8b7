"""custom-framework: channels in Pipe and FastFile mode, as SageMaker hands them over. These rules
are the shared entrypoint's, so they are tested once, on the smallest image.

Pipe: inputdataconfig.json says "TrainingInputMode": "Pipe"; there is no folder for the channel,
only the FIFOs /opt/ml/input/data/<channel>_<epoch>, each appearing once the one before it has
been read, and the platform writes the records into each as the script opens it. Here the test is
the platform: it makes the FIFOs in the host folder mounted at /opt/ml and writes into them from a
thread. FastFile: the channel's folder is a read-only, lazily read S3 mount; here a read-only bind.
"""

import errno
import json
import os
import stat
import threading
import time

from smimages.testing.harness import MLJob, make_tarball, program_job, run_job

WAIT_S = 90  # every wait on a FIFO is bounded: a test that goes wrong fails, it never hangs
RECORDS = 3000  # per epoch, about 90 KB: more than a pipe's 64 KiB buffer, so the writer waits on the reader


def records(epoch):
    return [f"epoch {epoch} record {i}".encode() for i in range(RECORDS)]


def open_for_writing(path, deadline, job_ended):
    """The writing end of a FIFO, once the container opens its reading end (ENXIO until then)."""
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
            if job_ended.is_set():
                raise RuntimeError(f"the job ended without opening {path.name}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing opened {path.name} for reading within {WAIT_S} s") from None
            time.sleep(0.02)
            continue
        os.set_blocking(fd, True)
        return fd


class Platform:
    """SageMaker's side of a Pipe channel: <channel>_0 exists when the job starts; each epoch's
    records are written as the script opens its FIFO, and the next FIFO appears once it is read."""

    def __init__(self, job, channel, epochs, host="algo-1"):
        self.job, self.channel, self.epochs, self.host = job, channel, epochs, host
        self.written, self.errors, self.job_ended = [], [], threading.Event()
        self.first = job.pipe(host, channel, 0)
        self.thread = threading.Thread(target=self._feed, daemon=True)

    def _feed(self):
        deadline = time.monotonic() + WAIT_S
        try:
            for epoch in range(self.epochs):
                path = self.first if epoch == 0 else self.job.pipe(self.host, self.channel, epoch)
                fd = open_for_writing(path, deadline, self.job_ended)
                with os.fdopen(fd, "wb") as fifo:  # a reader that dies makes this raise (EPIPE), never hang
                    fifo.write(b"".join(r + b"\n" for r in records(epoch)))
                self.written.append(path.name)
        except Exception as e:  # noqa: BLE001 - reported by join()
            self.errors.append(e)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.job_ended.set()  # a FIFO nobody opened by now never will be
        self.thread.join(timeout=WAIT_S + 10)  # the writer's own waits end by then

    def join(self):
        assert not self.thread.is_alive(), "the platform's writer is still blocked on a FIFO"
        assert not self.errors, self.errors
        return self.written


PIPE_SCRIPT = """
import json, os, sys, time
from sagemaker_training import environment

data = "/opt/ml/input/data"
at_start = sorted(os.listdir(data))
env = environment.Environment()  # what scripts written for AWS's images read
counts = {}
for epoch in range(2):
    fifo = os.path.join(data, f"train_{epoch}")
    deadline = time.monotonic() + 60
    while not os.path.exists(fifo):  # the next epoch's FIFO appears once the last one is read
        if time.monotonic() > deadline:
            sys.exit(f"{fifo} never appeared")
        time.sleep(0.05)
    assert __import__("stat").S_ISFIFO(os.stat(fifo).st_mode), fifo
    with open(fifo, "rb") as f:
        lines = f.read().splitlines()
    assert lines == [f"epoch {epoch} record {i}".encode() for i in range(len(lines))], lines[:3]
    counts[f"train_{epoch}"] = len(lines)
    print(f"epoch {epoch}: {len(lines)} records from train_{epoch}", flush=True)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "pipe.json"), "w") as f:
    json.dump({"counts": counts, "at_start": at_start,
               "env": {k: os.environ.get(k) for k in ("SM_CHANNELS", "SM_CHANNEL_TRAIN", "SM_INPUT_DATA_CONFIG")},
               "toolkit": {"channel_input_dirs": env.channel_input_dirs, "input_data_config": env.input_data_config},
               "channel_folder_exists": os.path.exists(os.environ["SM_CHANNEL_TRAIN"])}, f)
"""


def fifo_state(job):
    """{name: (mode, uid, gid)} of what is in the host's input/data."""
    data = job.tree("algo-1") / "input" / "data"
    return {p.name: (p.lstat().st_mode, p.lstat().st_uid, p.lstat().st_gid) for p in data.iterdir()}


def test_pipe_channel_reads_two_epochs_through_train_0_and_train_1(image, tmp_path):
    job = program_job(tmp_path, PIPE_SCRIPT, input_modes={"train": "Pipe"})
    config = json.loads((job.tree("algo-1") / "input" / "config" / "inputdataconfig.json").read_text())
    assert config == {"train": {"TrainingInputMode": "Pipe"}}
    with Platform(job, "train", epochs=2) as platform:
        made = fifo_state(job)["train_0"]
        [r] = run_job(image, job, timeout_s=120)
    r.ok()
    assert platform.join() == ["train_0", "train_1"]
    out = json.loads((r.model / "pipe.json").read_text())
    assert out["counts"] == {"train_0": RECORDS, "train_1": RECORDS}
    assert "epoch 1: 3000 records from train_1" in r.logs
    # the job started with the first FIFO only and no folder for the channel, and made none
    assert out["at_start"] == ["train_0"]
    assert out["channel_folder_exists"] is False
    after = fifo_state(job)
    assert sorted(after) == ["train_0", "train_1"]
    assert stat.S_ISFIFO(made[0]) and after == {"train_0": made, "train_1": made}  # neither changed nor chowned
    # SM_* as sagemaker-training 5.1.4 computes them whatever the mode (environment.py:
    # channel_input_dirs = {channel: channel_path(channel)}): the channel's would-be folder
    assert out["env"] == {"SM_CHANNELS": '["train"]', "SM_CHANNEL_TRAIN": "/opt/ml/input/data/train",
                          "SM_INPUT_DATA_CONFIG": '{"train":{"TrainingInputMode":"Pipe"}}'}
    assert out["toolkit"] == {"channel_input_dirs": {"train": "/opt/ml/input/data/train"},
                              "input_data_config": {"train": {"TrainingInputMode": "Pipe"}}}


def test_a_pipe_mode_script_that_raises_fails_with_the_cause_first(image, tmp_path):
    script = """
with open("/opt/ml/input/data/train_0", "rb") as f:
    n = len(f.read().splitlines())
raise RuntimeError(f"bad record after {n} records of epoch 0")
"""
    job = program_job(tmp_path, script, input_modes={"train": "Pipe"})
    with Platform(job, "train", epochs=1) as platform:
        [r] = run_job(image, job, timeout_s=120)
    line = r.cause(1)
    assert line == "user script train.py exited with code 1: RuntimeError: bad record after 3000 records of epoch 0"
    assert platform.join() == ["train_0"]


READ_ONLY_SCRIPT = """
import errno, json, os
folder = os.environ["SM_CHANNEL_TRAIN"]
rows = 0
for parent, _dirs, files in os.walk(folder):
    for name in files:
        with open(os.path.join(parent, name)) as f:
            rows += len(f.read().splitlines())
try:
    open(os.path.join(folder, "written-by-the-script"), "w").close()
    refused = None
except OSError as e:
    refused = errno.errorcode[e.errno]
with open(os.path.join(os.environ["SM_MODEL_DIR"], "read.json"), "w") as f:
    json.dump({"rows": rows, "write": refused, "config": json.loads(os.environ["SM_INPUT_DATA_CONFIG"])}, f)
"""


def snapshot(folder):
    """Everything that would show a write, an extraction or a chown under `folder`."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_mode, p.stat().st_uid, p.stat().st_size,
                                               p.stat().st_mtime_ns)
            for p in [folder, *folder.rglob("*")]}


def test_fastfile_channels_on_read_only_mounts_are_read_and_left_untouched(image, tmp_path):
    """The training data and the submitted sourcedir.tar.gz both in read-only FastFile channels:
    the tarball is extracted elsewhere (/opt/ml/code), nothing is written into either channel."""
    tarball = make_tarball(tmp_path / "sourcedir.tar.gz", {"train.py": READ_ONLY_SCRIPT})
    job = MLJob(tmp_path / "ml", channels={"train": {"a.csv": "1,2\n3,4\n", "part/b.csv": "5,6\n"},
                                           "code": {"sourcedir.tar.gz": tarball}},
                input_modes={"train": "FastFile", "code": "FastFile"},
                hyperparameters={"sagemaker_program": "train.py",
                                 "sagemaker_submit_directory": "/opt/ml/input/data/code/sourcedir.tar.gz"})
    data = job.tree("algo-1") / "input" / "data"
    before = {c: snapshot(data / c) for c in ("train", "code")}
    [r] = run_job(image, job)
    r.ok()
    out = json.loads((r.model / "read.json").read_text())
    assert out["rows"] == 3
    assert out["write"] == "EROFS"  # the mount really is read-only, so the job's success means something
    assert out["config"] == {"train": {"TrainingInputMode": "FastFile"}, "code": {"TrainingInputMode": "FastFile"}}
    assert {c: snapshot(data / c) for c in ("train", "code")} == before
    assert (job.tree("algo-1") / "code" / "train.py").exists()  # extracted where sagemaker-training puts it
