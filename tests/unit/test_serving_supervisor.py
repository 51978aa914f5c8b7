"""serve's supervisor without Docker: real child processes stand in for gunicorn's arbiter and
nginx. Either one ending ends the other, and a stop request reaches both."""

import os
import signal
import subprocess
import time

import pytest
from sm_entrypoint.serving import frontend
from sm_entrypoint.serving.errors import ConfigError
from sm_entrypoint.serving.settings import ServingSettings
from sm_entrypoint.serving.supervisor import Supervisor


class FakeNginx:
    """A `sleep` in nginx's place, recording the signals the supervisor sends."""

    def __init__(self):
        self.proc = None
        self.quit_sent = False

    def start(self):
        self.proc = subprocess.Popen(["sleep", "60"])

    def stop_accepting(self):
        self.quit_sent = True
        self.proc.terminate()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def arbiter(code_on_term=0, exit_after_s=None):
    """A forked child standing in for gunicorn's arbiter: exits `code_on_term` on SIGTERM, or by
    itself after `exit_after_s` with code 3 (gunicorn's 'worker failed to boot')."""
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(code_on_term))
        time.sleep(exit_after_s or 60)
        os._exit(3)
    return pid


def supervised(tmp_path, **arbiter_kwargs):
    socket_path = tmp_path / "workers.sock"
    socket_path.write_text("")
    nginx = FakeNginx()
    supervisor = Supervisor(arbiter(**arbiter_kwargs), nginx)
    assert supervisor.start_front_end(str(socket_path)) is None
    return supervisor, nginx


def test_the_arbiter_ending_ends_the_front_end_with_its_code(tmp_path):
    supervisor, nginx = supervised(tmp_path, exit_after_s=0.5)
    assert supervisor.wait() == 3
    assert nginx.proc.poll() is not None


def test_a_front_end_that_dies_stops_the_arbiter_and_fails(tmp_path):
    supervisor, nginx = supervised(tmp_path)
    nginx.proc.kill()
    assert supervisor.wait() == 1
    with pytest.raises(ChildProcessError):  # the arbiter was stopped and reaped
        os.waitpid(supervisor.arbiter_pid, os.WNOHANG)


def test_a_stop_request_reaches_both_and_ends_with_the_arbiters_code(tmp_path):
    supervisor, nginx = supervised(tmp_path)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)  # SIGALRM, then our SIGTERM, once wait() waits
        signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
        assert supervisor.wait() == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert nginx.quit_sent


def test_an_arbiter_that_never_listens_fails_naming_the_socket(tmp_path, monkeypatch):
    monkeypatch.setattr("sm_entrypoint.serving.supervisor.SOCKET_WAIT_S", 0.3)
    supervisor = Supervisor(arbiter(), FakeNginx())
    with pytest.raises(ConfigError, match="never listened on .*workers.sock within 0 s"):
        supervisor.start_front_end(str(tmp_path / "workers.sock"))
    os.waitpid(supervisor.arbiter_pid, 0)


def test_an_arbiter_that_ends_before_listening_gives_its_code(tmp_path):
    supervisor = Supervisor(arbiter(exit_after_s=0.1), FakeNginx())
    assert supervisor.start_front_end(str(tmp_path / "workers.sock")) == 3


def test_the_front_end_configuration_follows_the_settings(tmp_path):
    settings = ServingSettings.from_env({"SAGEMAKER_BIND_TO_PORT": "9090", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "2",
                                         "SAGEMAKER_MODEL_SERVER_TIMEOUT": "20"})
    conf = frontend.config(settings, str(tmp_path))
    assert "listen 9090 backlog=2048;" in conf
    assert "client_max_body_size 2097152;" in conf  # 413 from Content-Length, before the body is read
    assert f"if (-f {tmp_path}/ready)" in conf  # /ping: the marker the first loaded worker writes
    assert "proxy_read_timeout 70s;" in conf  # past the workers' own 504, with time to wait for one
    assert f"server unix:{tmp_path}/workers.sock;" in conf


def test_a_multi_model_endpoints_own_answers_are_json_in_mmss_shape_and_streams_reach_the_client(tmp_path):
    settings = ServingSettings.from_env({"SAGEMAKER_MULTI_MODEL": "true"})
    conf = frontend.config(settings, str(tmp_path), manager_port=1234)
    assert ('''return 404 '{"code": 404, "type": "ModelNotFoundException", "message": "Model not found: $model"}';'''
            in conf)
    assert "error_page 502 = @model_failed;" in conf  # 404 once the model is unloaded, else 502
    assert "the model server\\'s worker ended" in conf  # a quote inside nginx's quoted JSON
    single = frontend.config(ServingSettings.from_env({}), str(tmp_path))
    assert "proxy_http_version 1.1;" in single and "ModelNotFoundException" not in single
