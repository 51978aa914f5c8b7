"""Which rank failed, where, and with what error, read from launchers' stderr (no Docker)."""
# ruff: noqa: E501, W291 - the launchers' real stderr below is kept verbatim, long lines and all

import sys

from sm_entrypoint import failure, process
from sm_entrypoint.distributed import launcher_stderr, mpi, rank_error, rendezvous, torchrun
from sm_entrypoint.script import Script
from sm_entrypoint.traceback_line import error_line, exception_line

HOSTS = ["algo-1", "algo-2"]
ERROR = "ValueError: learning rate must be positive"

TRACEBACK = """\
Traceback (most recent call last):
  File "/opt/ml/code/train.py", line 9, in <module>
    main(lr)
  File "/opt/ml/code/train.py", line 5, in main
    raise ValueError("learning rate must be positive")
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
ValueError: learning rate must be positive""".splitlines()


def test_the_exception_line_wins_over_what_is_printed_after_the_traceback():
    lines = ["epoch 1", *TRACEBACK, "terminate called without an active exception", "-" * 40, ""]
    assert error_line(lines) == "ValueError: learning rate must be positive"


def test_a_chained_exception_gives_the_last_traceback_s_line():
    lines = [*TRACEBACK, "", "During handling of the above exception, another exception occurred:", "",
             "Traceback (most recent call last):", '  File "x.py", line 1, in <module>',
             "torch.OutOfMemoryError: out of memory"]
    assert exception_line(lines) == "torch.OutOfMemoryError: out of memory"


def test_a_syntax_error_and_a_bare_exception_name_are_exception_lines():
    syntax = ["Traceback (most recent call last):", '  File "t.py", line 2', "    f(", "     ^",
              "SyntaxError: '(' was never closed"]
    assert exception_line(syntax) == "SyntaxError: '(' was never closed"
    assert exception_line(["Traceback (most recent call last):", "  File ...", "KeyboardInterrupt"]) == "KeyboardInterrupt"


def test_a_line_that_is_not_an_exception_inside_a_traceback_is_skipped():
    lines = ["Traceback (most recent call last):", "  File ...", "Epoch 1 loss 0.3", "RuntimeError: boom"]
    assert exception_line(lines) == "RuntimeError: boom"


def test_without_a_traceback_the_last_meaningful_line_is_the_error():
    assert error_line(["bad data", "-" * 74, "=====", "  "]) == "bad data"
    assert error_line([]) == ""


def test_the_kept_stderr_is_bounded_in_lines_and_characters():
    tail = process.Tail(max_lines=3, max_chars=10)
    for line in (b"aaaa", b"bbbb", b"cccc", b"dd"):
        tail.append(line)
    assert list(tail.lines) == ["bbbb", "cccc", "dd"]
    tail.append(b"x" * (process.LINE_BYTES + 100))
    assert list(tail.lines) == ["x" * process.LINE_BYTES]


def test_a_process_keeps_more_lines_for_the_parsers_than_for_the_detail():
    code = "import sys\nfor i in range(300): print(i, file=sys.stderr)\nsys.exit(3)"
    result = process.run([sys.executable, "-c", code])
    assert len(result.stderr_tail) == process.TAIL_LINES and result.stderr_tail[-1] == "299"
    assert result.stderr_lines[0] == "0" and len(result.stderr_lines) == 300


def test_the_headline_keeps_the_rank_and_the_outcome_within_1024_characters():
    found = rank_error.RankError(1, "algo-2", "ValueError: " + "x" * 3000)
    line = rank_error.headline("user script train.py", found, "mpirun exited with code 1")
    assert len(line) == failure.REASON_LIMIT
    assert line.startswith("user script train.py failed on rank 1 (host algo-2): ValueError: xxx")
    assert line.endswith("xxx... (mpirun exited with code 1)")


# Real stderr, as the pytorch-horovod-cpu image's launchers printed it when rank 1 of a 2-host job
# raised ValueError (or was killed by SIGKILL), Open MPI 4.1.4 and torch 2.13.
MPIRUN_RANK_RAISED = r"""
[1,1]<stderr>:Traceback (most recent call last):
[1,1]<stderr>:  File "/opt/ml/code/fail.py", line 8, in <module>
[1,1]<stderr>:    raise ValueError("learning rate must be positive")
[1,1]<stderr>:ValueError: learning rate must be positive
[1,0]<stderr>:Traceback (most recent call last):
[1,0]<stderr>:  File "/opt/venv/lib/python3.11/site-packages/horovod/torch/mpi_ops.py", line 1285, in synchronize
[1,0]<stderr>:    mpi_lib.horovod_torch_wait_and_clear(handle)
[1,0]<stderr>:RuntimeError: Horovod has been shut down. This was caused by an exception on one of the ranks or an attempt to allreduce, allgather or broadcast a tensor after one of the ranks finished execution. If the shutdown was caused by an exception, you should see the exception in the log before the first shutdown message.
[1,0]<stderr>:
[1,0]<stderr>:During handling of the above exception, another exception occurred:
[1,0]<stderr>:
[1,0]<stderr>:Traceback (most recent call last):
[1,0]<stderr>:  File "/opt/ml/code/fail.py", line 9, in <module>
[1,0]<stderr>:    hvd.allreduce(torch.ones(1), name="never")  # rank 0 waits here until mpirun ends it
[1,0]<stderr>:    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
[1,0]<stderr>:  File "/opt/venv/lib/python3.11/site-packages/horovod/torch/mpi_ops.py", line 254, in allreduce
[1,0]<stderr>:    summed_tensor_compressed = HorovodAllreduce.apply(tensor_compressed, average, name, op,
[1,0]<stderr>:                               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
[1,0]<stderr>:  File "/opt/venv/lib/python3.11/site-packages/torch/autograd/function.py", line 625, in apply
[1,0]<stderr>:    return super().apply(*args, **kwargs)  # type: ignore[misc]
[1,0]<stderr>:           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
[1,0]<stderr>:  File "/opt/venv/lib/python3.11/site-packages/horovod/torch/mpi_ops.py", line 205, in forward
[1,0]<stderr>:    return synchronize(handle)
[1,0]<stderr>:           ^^^^^^^^^^^^^^^^^^^
[1,0]<stderr>:  File "/opt/venv/lib/python3.11/site-packages/horovod/torch/mpi_ops.py", line 1290, in synchronize
[1,0]<stderr>:    raise HorovodInternalError(e)
[1,0]<stderr>:horovod.common.exceptions.HorovodInternalError: Horovod has been shut down. This was caused by an exception on one of the ranks or an attempt to allreduce, allgather or broadcast a tensor after one of the ranks finished execution. If the shutdown was caused by an exception, you should see the exception in the log before the first shutdown message.
--------------------------------------------------------------------------
Primary job  terminated normally, but 1 process returned
a non-zero exit code. Per user-direction, the job has been aborted.
--------------------------------------------------------------------------
--------------------------------------------------------------------------
mpirun detected that one or more processes exited with non-zero status, thus causing
the job to be terminated. The first process to do so was:

  Process name: [[14315,1],1]
  Exit code:    1
--------------------------------------------------------------------------
""".splitlines()

MPIRUN_RANK_KILLED = r"""
--------------------------------------------------------------------------
Primary job  terminated normally, but 1 process returned
a non-zero exit code. Per user-direction, the job has been aborted.
--------------------------------------------------------------------------
--------------------------------------------------------------------------
An MPI communication peer process has unexpectedly disconnected.  This
usually indicates a failure in the peer process (e.g., a crash or
otherwise exiting without calling MPI_FINALIZE first).

Although this local MPI process will likely now behave unpredictably
(it may even hang or crash), the root cause of this problem is the
failure of the peer -- that is what you need to investigate.  For
example, there may be a core file that you can examine.  More
generally: such peer hangups are frequently caused by application bugs
or other external events.

  Local host: fb3e4f647982
  Local PID:  27
  Peer host:  algo-2
--------------------------------------------------------------------------
--------------------------------------------------------------------------
mpirun noticed that process rank 1 with PID 25 on node algo-2 exited on signal 9 (Killed).
--------------------------------------------------------------------------
""".splitlines()

def torchrun_log(script_error, pid):
    """What torchrun printed when its one local rank (global rank 1) died: the rank's own lines,
    then torchrun's traceback and summary (as captured from the image, times and host kept)."""
    return (script_error + f"""E1130 04:09:51.311000 12 torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: 1) local_rank: 0 (pid: {pid}) of binary: /opt/venv/bin/python3
Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "<frozen runpy>", line 88, in _run_code
  File "/opt/venv/lib/python3.11/site-packages/torch/distributed/run.py", line 1032, in <module>
    main()
  File "/opt/venv/lib/python3.11/site-packages/torch/distributed/elastic/multiprocessing/errors/__init__.py", line 367, in wrapper
    return f(*args, **kwargs)
           ^^^^^^^^^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/torch/distributed/run.py", line 1028, in main
    run(args)
  File "/opt/venv/lib/python3.11/site-packages/torch/distributed/run.py", line 1019, in run
    elastic_launch(
  File "/opt/venv/lib/python3.11/site-packages/torch/distributed/launcher/api.py", line 194, in __call__
    return launch_agent(
           ^^^^^^^^^^^^^
  File "/opt/venv/lib/python3.11/site-packages/torch/distributed/launcher/api.py", line 383, in launch_agent
    raise ChildFailedError(
torch.distributed.elastic.multiprocessing.errors.ChildFailedError: 
============================================================
/opt/ml/code/fail.py FAILED
------------------------------------------------------------
Failures:
  <NO_OTHER_FAILURES>
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-11-30_04:09:51
  host      : e19398f71578
  rank      : 1 (local_rank: 0)
  exitcode  : 1 (pid: {pid}) 
  error_file: <N/A>
  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html
============================================================
""").splitlines()


# The rank raised after init_process_group: torch prefixes its lines with [rankN]:.
TORCHRUN_RANK_RAISED = torchrun_log(r"""
[rank1]: Traceback (most recent call last):
[rank1]:   File "/opt/ml/code/fail.py", line 8, in <module>
[rank1]:     raise ValueError("learning rate must be positive")
[rank1]: ValueError: learning rate must be positive
""", pid=16)

# The rank raised before init_process_group: its lines come bare.
TORCHRUN_RANK_RAISED_BEFORE_INIT = torchrun_log(r"""
Traceback (most recent call last):
  File "/opt/ml/code/fail.py", line 4, in <module>
    raise ValueError("learning rate must be positive")
ValueError: learning rate must be positive
""", pid=17)


def script():
    return Script("/opt/ml/code/train.py", [], "/opt/ml/code", {"SM_HPS": "{}"})


def test_mpirun_names_the_first_rank_to_fail_its_host_and_its_own_exception():
    found = launcher_stderr.from_mpirun(MPIRUN_RANK_RAISED, HOSTS, nproc=1)
    assert (found.rank, found.host, found.error) == (1, "algo-2", ERROR)
    assert found.lines[0] == "Traceback (most recent call last):" and found.lines[-1] == ERROR


def test_the_rank_that_raised_wins_over_the_first_to_exit_when_a_peer_was_brought_down():
    """Seen in CI: Horovod shuts rank 0 down because rank 1 raised, and rank 0 exits first, so
    mpirun's summary names rank 0; the cause is still rank 1's own error."""
    lines = [line.replace("[[14315,1],1]", "[[14315,1],0]") for line in MPIRUN_RANK_RAISED]
    found = launcher_stderr.from_mpirun(lines, HOSTS, nproc=1)
    assert (found.rank, found.host, found.error) == (1, "algo-2", ERROR)


def test_a_knock_on_error_printed_first_is_still_not_the_cause():
    rank0 = [line for line in MPIRUN_RANK_RAISED if line.startswith("[1,0]")]
    rank1 = [line for line in MPIRUN_RANK_RAISED if line.startswith("[1,1]")]
    rest = [line for line in MPIRUN_RANK_RAISED if not line.startswith("[1,")]
    found = launcher_stderr.from_mpirun(rank0 + rank1 + rest, HOSTS, nproc=1)
    assert (found.rank, found.error) == (1, ERROR)


def test_mpirun_rank_to_host_follows_map_by_slot():
    assert launcher_stderr.from_mpirun(MPIRUN_RANK_RAISED, ["algo-1", "algo-2"], nproc=2).host == "algo-1"
    assert launcher_stderr.from_mpirun(MPIRUN_RANK_RAISED, None, nproc=1).host is None


def test_mpirun_rank_killed_by_a_signal_is_told_by_mpirun_s_own_words():
    found = launcher_stderr.from_mpirun(MPIRUN_RANK_KILLED, HOSTS, nproc=1)
    assert (found.rank, found.host, found.error) == (1, "algo-2", "it exited on signal 9 (Killed)")


def test_without_mpirun_s_summary_the_first_rank_that_raised_is_named():
    lines = [line for line in MPIRUN_RANK_RAISED if "Process name" not in line]
    assert launcher_stderr.from_mpirun(lines, HOSTS, nproc=1).rank == 1
    assert launcher_stderr.from_mpirun(["-" * 20, "mpirun: some trouble"], HOSTS, nproc=1) is None


def test_torchrun_names_its_root_cause_rank_with_its_exception_not_torchrun_s_own():
    for stderr in (TORCHRUN_RANK_RAISED, TORCHRUN_RANK_RAISED_BEFORE_INIT):
        found = launcher_stderr.from_torchrun(stderr, "algo-2")
        assert (found.rank, found.host, found.error) == (1, "algo-2", ERROR)
        assert found.lines[-1] == ERROR and not any("ChildFailedError" in line for line in found.lines)


def test_torchrun_with_several_local_ranks_keeps_the_failing_rank_s_lines():
    other = ["[rank2]: Traceback (most recent call last):", '[rank2]:   File "x.py", line 1', "[rank2]: OSError: other"]
    found = launcher_stderr.from_torchrun(other + TORCHRUN_RANK_RAISED, "algo-2")
    assert found.error == ERROR and not any("OSError" in line for line in found.lines)


def test_torchrun_rank_without_a_traceback_is_told_by_its_signal():
    stderr = [line.replace("1 (pid: 16)", "-9 (pid: 16)").replace(
        "To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html", "Signal 9 (SIGKILL) received by PID 16")
        for line in TORCHRUN_RANK_RAISED if "[rank1]" not in line]
    assert launcher_stderr.from_torchrun(stderr, "algo-2").error == "Signal 9 (SIGKILL) received by PID 16"


def test_mpirun_failure_leads_with_the_rank_s_error_and_keeps_mpirun_s_tail():
    master = mpi.Master.from_script(script(), HOSTS, 1, "", "eth0", settings=None)
    assert "--tag-output" in master.command()
    cause, detail = master.explain_failure(process.Result(1, MPIRUN_RANK_RAISED[-40:], stderr_lines=MPIRUN_RANK_RAISED))
    assert cause == f"user script train.py failed on rank 1 (host algo-2): {ERROR} (mpirun exited with code 1)"
    assert detail.startswith("rank 1 (host algo-2), its last stderr lines:\nTraceback (most recent call last):")
    assert detail.endswith("\n".join(MPIRUN_RANK_RAISED[-40:]))


def test_custom_mpi_options_that_map_ranks_otherwise_name_no_host():
    master = mpi.Master.from_script(script(), HOSTS, 1, "--map-by node -x FOO=1", "eth0", settings=None)
    cause, _ = master.explain_failure(process.Result(1, [], stderr_lines=MPIRUN_RANK_RAISED))
    assert cause.startswith(f"user script train.py failed on rank 1: {ERROR}")


def test_torchrun_failure_leads_with_the_rank_s_error():
    plan = torchrun.Torchrun.from_script(script(), HOSTS, "algo-2", 1)
    cause, detail = plan.explain_failure(process.Result(1, TORCHRUN_RANK_RAISED[-40:], stderr_lines=TORCHRUN_RANK_RAISED))
    assert cause == f"user script train.py failed on rank 1 (host algo-2): {ERROR} (torchrun exited with code 1)"
    assert "torchrun's last stderr lines:" in detail


def test_a_plain_rendezvous_rank_names_itself():
    stderr = [line for line in TORCHRUN_RANK_RAISED if line.startswith("[rank1]")]
    plan = rendezvous.with_rendezvous(script(), HOSTS, "algo-2", "eth0")
    cause, detail = plan.explain_failure(process.Result(1, stderr))
    assert cause == f"user script train.py failed on rank 1 (host algo-2): {ERROR} (exited with code 1)"
    assert detail == "\n".join(stderr)
    stopped, _ = plan.explain_failure(process.Result(-15, []))  # local mode stopped it: no rank error
    assert stopped == "user script train.py was killed by signal SIGTERM (exit 143)"


def test_a_launcher_whose_stderr_names_no_rank_keeps_the_old_cause_without_banners():
    master = mpi.Master.from_script(script(), HOSTS, 1, "", "eth0", settings=None)
    lines = ["mpirun was unable to launch the specified application", "-" * 74]
    cause, _ = master.explain_failure(process.Result(1, lines))
    assert cause == "mpirun of user script train.py exited with code 1: mpirun was unable to launch the specified application"


def test_a_parser_bug_never_hides_the_failure(monkeypatch):
    def broken(*_):
        raise IndexError("parser bug")

    monkeypatch.setattr(launcher_stderr, "from_mpirun", broken)
    master = mpi.Master.from_script(script(), HOSTS, 1, "", "eth0", settings=None)
    cause, _ = master.explain_failure(process.Result(1, MPIRUN_RANK_RAISED))
    assert cause.startswith("mpirun of user script train.py exited with code 1: ")
