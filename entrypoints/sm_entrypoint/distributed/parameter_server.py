"""distribution={"parameter_server": {"enabled": True}} (hyperparameter
sagemaker_parameter_server_enabled): MXNet's distributed kvstore (kvstore='dist_sync' or
'dist_async') as AWS's MXNet images run it. The first host runs the scheduler, every host one
server, and the user script runs as the worker on every host, wired by the DMLC_* variables
(DMLC_ROLE; DMLC_PS_ROOT_URI and DMLC_PS_ROOT_PORT, the scheduler's address; DMLC_NUM_SERVER and
DMLC_NUM_WORKER, one per host). MXNet itself is the scheduler or the server: importing it with
DMLC_ROLE=scheduler or server runs that role until every worker is done. On one host nothing is
started and the script runs alone, as the toolkit does.

The toolkit starts the scheduler and server and forgets them. Here they are watched: one that fails
ends this host's worker at once and the job with that role's own cause first; a host that vanishes
while this worker trains (dist_sync would wait for it for ever) fails this host within PEER_GONE_S;
and both roles end with the job."""

import logging
import os
import socket
import time

from .. import cluster, process, signals, waiting
from ..errors import JobError
from ..script import Script
from . import rank_error

log = logging.getLogger("sm_entrypoint")
ENABLED = "sagemaker_parameter_server_enabled"
PORT, VERBOSE = "_ps_port", "_ps_verbose"  # the toolkit's hyperparameters for the scheduler's port and ps-lite's log
DEFAULT_PORT = 8000
ROLE_COMMAND = ("-c", "import mxnet")  # with DMLC_ROLE=scheduler|server, MXNet runs that role on import
PEER_GONE_S = 30.0  # a host that stops answering for this long, while this one trains, fails it
END_GRACE_S = 30.0  # once no other host runs, how long this host's roles may take to end by themselves
POLL_S = 0.5
PEERS_EVERY_S = 2.0


def variables(hosts, port, verbose, interface):
    """The DMLC_* variables every process of the job shares (DMLC_ROLE apart)."""
    try:
        root = socket.gethostbyname(hosts[0])  # ps-lite connects to an address, as the toolkit's lookup gives
    except OSError as e:
        raise JobError(f"the parameter-server scheduler's host {hosts[0]} does not resolve: {e}") from e
    return {"DMLC_NUM_WORKER": str(len(hosts)), "DMLC_NUM_SERVER": str(len(hosts)),
            "DMLC_PS_ROOT_URI": root, "DMLC_PS_ROOT_PORT": str(port), "PS_VERBOSE": str(verbose),
            "DMLC_INTERFACE": str(interface or "eth0")}


def port_of(hyperparameters):
    raw = hyperparameters.get(PORT, DEFAULT_PORT)
    try:
        port = int(str(raw).strip().strip('"'))
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise JobError(f"hyperparameter {PORT} must be a TCP port, got {raw!r}")
    return port


class ParameterServer(rank_error.NamesFailingRank, Script):
    """This host's part: the scheduler (first host), the server, and the script as the worker."""

    @classmethod
    def from_script(cls, script, hosts, current, hyperparameters, interface, barrier_port):
        shared = variables(hosts, port_of(hyperparameters), hyperparameters.get(VERBOSE, "0"), interface)
        plan = cls(script.path, script.args, script.cwd, {**script.env_vars, **shared})
        plan.hosts, plan.host, plan.barrier_port = list(hosts), current, barrier_port
        return plan

    def __str__(self):
        return f"parameter-server worker {super().__str__()}"

    @property
    def roles(self):
        return (["scheduler"] if self.host == self.hosts[0] else []) + ["server"]

    def find_rank_error(self, lines):
        return rank_error.from_rank(lines, self.hosts.index(self.host), self.host)

    def _start(self, command, role, cwd=None):
        return process.start(command, env={**os.environ, **self.env_vars, "DMLC_ROLE": role}, cwd=cwd)

    def _failed_role(self, roles):
        """The first role that ended with an error, unless a stop request (passed on to every
        process here) ended it -> (cause, detail), else None."""
        if signals.stop_requested():
            return None
        for role, running in roles.items():
            if running.poll() not in (None, 0):
                return self._role_failure(role, running)
        return None

    def run(self):
        log.info("parameter server: %s on %s, scheduler at %s:%s, %d worker(s)", " and ".join(self.roles),
                 self.host, self.env_vars["DMLC_PS_ROOT_URI"], self.env_vars["DMLC_PS_ROOT_PORT"], len(self.hosts))
        roles = {role: self._start([process.python(), *ROLE_COMMAND], role) for role in self.roles}
        try:
            worker = self._start(self.command(), "worker", cwd=self.cwd)
            log.info("running %s", " ".join(self.command()))
            cause = self._watch(worker, roles)
            result = worker.end() if cause else worker.wait()
            if cause:
                raise JobError(cause[0], detail=cause[1])
            if result.returncode != 0:
                cause, detail = self.explain_failure(result)
                raise JobError(cause, detail=detail, exit_code=result.exit_code)
            self._wait_for_roles(roles)
        finally:
            for running in roles.values():
                running.end(grace_s=5.0)

    def _role_failure(self, role, running):
        result = running.wait()
        return (result.describe(f"MXNet's parameter-server {role} (DMLC_ROLE={role}) on {self.host}"),
                "\n".join(result.stderr_tail))

    def _watch(self, worker, roles):
        """While the worker runs: a role that fails, or a host that vanishes, ends it -> (cause,
        detail); None once the worker has ended by itself."""
        gone_since, last_peers = {}, 0.0
        while worker.poll() is None:
            failed = self._failed_role(roles)
            if failed:
                return failed
            if time.monotonic() - last_peers >= PEERS_EVERY_S:
                last_peers = time.monotonic()
                gone = self._gone_peer(gone_since)
                if gone:
                    return (f"host {gone} stopped answering for {PEER_GONE_S:.0f} s while the parameter-server "
                            f"worker on {self.host} trained: its own log and failure file hold the cause", "")
            time.sleep(POLL_S)
        return None

    def _others_states(self):
        """{host: its answer on the barrier port} for every other host, asked at the same time."""
        return waiting.each([p for p in self.hosts if p != self.host], lambda p: cluster.ask(p, self.barrier_port))

    def _gone_peer(self, gone_since):
        """The first other host that has not answered for PEER_GONE_S, else None."""
        states = self._others_states()
        now = time.monotonic()
        for peer, state in states.items():
            if state in (cluster.RUNNING, cluster.DONE):
                gone_since.pop(peer, None)
            elif now - gone_since.setdefault(peer, now) > PEER_GONE_S:
                return peer
        return None

    def _wait_for_roles(self, roles):
        """The worker is done: the scheduler and server end once every host's worker is, and the
        others need this host's server until then. Bounded by the others: once none of them runs
        (done or gone), the roles get END_GRACE_S more, then are ended."""
        idle_since = None
        while any(r.poll() is None for r in roles.values()):
            failed = self._failed_role(roles)
            if failed:
                raise JobError(failed[0], detail=failed[1])
            if signals.stop_requested():
                return
            states = self._others_states()
            others_run = cluster.RUNNING in states.values()
            if others_run:
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > END_GRACE_S:
                log.warning("the parameter-server %s did not end within %.0f s of the last worker: ending it",
                            " and ".join(r for r, p in roles.items() if p.poll() is None), END_GRACE_S)
                return
            time.sleep(POLL_S)
        log.info("the parameter-server %s on %s ended", " and ".join(roles), self.host)
