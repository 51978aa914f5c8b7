"""The GPU check, for a machine with NVIDIA GPUs, PyTorch and Python but no Docker, no nginx and
no network: it runs this repository's own code from a checkout, installs nothing, and prints one
line per check (PASS / FAIL / SKIP, figures, seconds):

    make gpu-check    # PYTHONPATH=entrypoints:images/pytorch-horovod python3 -m smimages.gpu_check

  environment  torch and CUDA versions, the GPUs (names, memory, a matmul on each checked against
               the CPU), NCCL's version, and which of the packages the other checks use import
  nccl         torchrun, one process per GPU: an all_reduce checked, and its bus bandwidth
  ddp          examples/pytorch-mnist-ddp/mnist.py, backend nccl, one process per GPU, through the
               shared entrypoint's `train` (torch_distributed) on a temporary /opt/ml when
               sagemaker-training imports here, else through torchrun; the digits from
               smimages.datasets (synthetic ones without scikit-learn): accuracy, every rank's
               final weights identical
  serve        the shared model server's gunicorn workers (2 per GPU) on 127.0.0.1, without
               nginx, serving a TorchScript model.pt with sm_pytorch's default model_fn: each
               worker k must hold the model on GPU k mod N and compute the right answer there.
               Without gunicorn the same hooks run in one process per worker number instead
  horovod      when horovod.torch imports: an allreduce over one process per GPU (horovodrun, Gloo)

On a machine without Horovod, build_horovod.sh (beside this file) builds the lock's sdist there
first, with NCCL for its GPUs. Without a GPU the GPU parts say SKIP and why; ddp then runs the
same launch with gloo on the CPU and serve runs on the CPU (workers get gpu_id None), so the code
paths are checked anyway. The exit
code is 1 when a check that ran failed. Every step runs in processes of its own, each under a
timeout, all within GPU_CHECK_BUDGET_S (default 480 s); each step's output is kept under
out/gpu-check/ (GPU_CHECK_LOGS). GPU_CHECK_LAUNCHER=torchrun skips the entrypoint for ddp.

This package's modules import only the standard library at the top: torch and the rest are
imported by the child processes it starts (`python3 -m smimages.gpu_check _env`, ...), so a broken
package is a failed check, not a crash of the check.

The modules:

  __main__      the command: every check in turn, the report; or, named by its first argument,
                a child's part
  report        Result, the report's lines, the exit code; a child's marked result line
  launch        the time budget, a child process under a timeout in a session of its own,
                torchrun, the environment children get
  context       what the checks share (budget, folders, the environment's findings)
  environment, nccl, ddp, serve, horovod
                one check each (ddp's data: digits; the served model and its script: served_model)
  children      what runs inside the child processes (_env, _nccl_probe, _model, _serve, _worker,
                _hvd_probe)
"""
