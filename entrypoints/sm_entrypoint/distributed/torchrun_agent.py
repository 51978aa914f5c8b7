"""`python -m sm_entrypoint.distributed.torchrun_agent <torchrun arguments>`: torchrun itself
(torch.distributed.run's main), except that the host of the rendezvous store leaves last.

Why: when the workers have succeeded, torchrun's agents meet in an exit barrier held in a store
served by the first host's agent. The last agent to arrive sets the barrier's key and then asks
for it once more; the first host's agent, woken by that key, may already have exited and closed
the store. The other agent then logs torch's 'Error waiting on exit barrier' with a traceback
after a job that succeeded (pytorch/pytorch#69520, open). Here every agent checks out of the store
once its barrier returns, and the store's host waits for all of them (at most DEPART_WAIT_S)
before it leaves. Nothing else of torchrun changes: its arguments, output and exit code are its own.
"""

import inspect
import sys
import time

DEPART_WAIT_S = 10.0  # an agent that passed the barrier checks out in milliseconds
POLL_S = 0.02
DEPARTED = "sm_departed"


def check_out(store, world_size, key_prefix, hosts_store, wait_s=DEPART_WAIT_S):
    """This agent is done with the store; the host of the store waits for every agent to be.
    Returns how many had checked out."""
    key = key_prefix + DEPARTED
    departed = store.add(key, 1)
    deadline = time.monotonic() + wait_s
    while hosts_store and departed < world_size and time.monotonic() < deadline:
        time.sleep(POLL_S)
        departed = store.add(key, 0)
    if departed < world_size and hosts_store:
        print(f"torchrun: {world_size - departed} of {world_size} agent(s) never left the exit barrier "
              f"within {wait_s:g} s; closing the rendezvous store", file=sys.stderr, flush=True)
    return departed


def after_exit_barrier(barrier, exit_key, hosts_store):
    """`barrier`, then check_out when it was the exit barrier (key prefix `exit_key`). Arguments
    are read by name: torch 2.2 calls barrier(store, rank, world_size, key_prefix=...), torch
    2.13 barrier(store=..., world_size=..., key_prefix=...)."""
    signature = inspect.signature(barrier)

    def barrier_then_check_out(*args, **kwargs):
        barrier(*args, **kwargs)
        call = signature.bind(*args, **kwargs).arguments
        if call.get("key_prefix") == exit_key:
            check_out(call["store"], call["world_size"], exit_key, hosts_store)

    return barrier_then_check_out


def install(hosts_store):
    """Wrap the exit barrier of torchrun's agent (it calls store_util.barrier by module attribute)."""
    import torch.distributed.elastic.utils.store as store_util
    from torch.distributed.elastic.agent.server import api

    store_util.barrier = after_exit_barrier(store_util.barrier, api._TERMINAL_STATE_SYNC_ID, hosts_store)


def main():
    from torch.distributed import run

    argv = sys.argv[1:]
    install(hosts_store=run.parse_args(argv).node_rank == 0)  # static rendezvous: node 0 serves the store
    run.main(argv)


if __name__ == "__main__":
    main()
