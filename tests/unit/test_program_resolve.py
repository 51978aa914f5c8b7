"""program.resolve: which one program a job runs, and how. A framework module
(SAGEMAKER_TRAINING_MODULE) wins; else the `entrypoint` hyperparameter (a script in the
training-code channel); else sagemaker_program from sagemaker_submit_directory; else a cause."""

import os
import sys

import pytest
from sm_entrypoint import program
from sm_entrypoint.errors import JobError
from sm_entrypoint.script import Script, script_command
from sm_entrypoint.settings import Settings

NOTHING = "nothing to run: give the 'entrypoint' hyperparameter, or sagemaker_program with sagemaker_submit_directory"


class FakeEnv:
    """What resolve reads of sagemaker_training's Environment, for one host."""

    def __init__(self, hyperparameters=None, user_entry_point=None, module_dir=None):
        self.hyperparameters = hyperparameters or {}
        self.user_entry_point, self.module_dir = user_entry_point, module_dir
        self.additional_framework_parameters = {}
        self.hosts, self.current_host, self.num_gpus, self.network_interface_name = ["algo-1"], "algo-1", 0, "eth0"

    def to_cmd_args(self):
        return ["--from", "toolkit"]

    def to_env_vars(self):
        return {"SM_HPS": "{}"}


@pytest.fixture(autouse=True)
def no_module(monkeypatch):
    monkeypatch.delenv("SAGEMAKER_TRAINING_MODULE", raising=False)
    monkeypatch.setenv("SM_ENTRYPOINT_PYTHON", "/usr/bin/python-of-the-image")


@pytest.fixture
def write_tree(job):
    return job.write_tree


@pytest.fixture
def base(job, write_tree):
    base = job.base
    write_tree(base / "input" / "data" / "training-code", {"main.py": "", "sub/dir/main.py": ""})
    write_tree(base / "code", {"train.py": ""})
    return base


def resolve(base, **env):
    return program.resolve(FakeEnv(**env), Settings(str(base), 300.0, 3600.0, 7479, 16384))


def submitted(base, name="train.py", **hyperparameters):
    return {"user_entry_point": name, "module_dir": str(base / "code"),
            "hyperparameters": {"sagemaker_program": name, **hyperparameters}}


def test_a_framework_module_wins_over_everything(base, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_TRAINING_MODULE", "my_framework.training")
    plan = resolve(base, **submitted(base, entrypoint="main.py"))
    assert isinstance(plan, program.FrameworkModule)
    assert str(plan) == "framework module my_framework.training:main"  # main unless named


def test_an_empty_framework_module_variable_is_no_module(base, monkeypatch):
    """An image sets SAGEMAKER_TRAINING_MODULE; a job may unset it by giving it empty."""
    monkeypatch.setenv("SAGEMAKER_TRAINING_MODULE", "")
    plan = resolve(base, hyperparameters={"entrypoint": "main.py"})
    assert type(plan) is Script and plan.path == str(base / "input" / "data" / "training-code" / "main.py")


def test_the_entrypoint_hyperparameter_wins_over_sagemaker_program(base):
    plan = resolve(base, **submitted(base, entrypoint="main.py", epochs=3, lr=0.1))
    channel = base / "input" / "data" / "training-code"
    assert plan.command() == ["/usr/bin/python-of-the-image", str(channel / "main.py"), "--epochs", "3", "--lr", "0.1",
                              "--sagemaker_program", "train.py"]
    assert plan.cwd == str(channel)


def test_an_entrypoint_in_a_subfolder_runs_in_that_folder(base):
    plan = resolve(base, hyperparameters={"entrypoint": "sub/dir/main.py"})
    assert plan.cwd == str(base / "input" / "data" / "training-code" / "sub" / "dir")
    assert plan.command()[1:] == [plan.path]  # nothing but the entrypoint: no arguments


def test_sagemaker_program_runs_from_the_submitted_folder_with_the_toolkits_arguments(base):
    plan = resolve(base, **submitted(base))
    assert type(plan) is Script and str(plan) == "user script train.py"
    assert plan.command() == ["/usr/bin/python-of-the-image", str(base / "code" / "train.py"), "--from", "toolkit"]
    assert plan.cwd == str(base / "code") and plan.env_vars["SM_HPS"] == "{}"
    assert plan.env_vars["WORLD_SIZE"] == "1"  # one host: the rendezvous variables still name it


def test_nothing_to_run_says_what_to_give(base):
    with pytest.raises(JobError) as e:
        resolve(base, hyperparameters={"epochs": "1"})
    assert e.value.cause == NOTHING + ", or set SAGEMAKER_TRAINING_MODULE"


def test_a_framework_module_with_no_user_program_says_what_to_give(base):
    with pytest.raises(JobError) as e:
        program.run_user_program(FakeEnv(hyperparameters={"epochs": "1"}), Settings(str(base), 1, 1, 7479, 16384))
    assert e.value.cause == NOTHING


@pytest.mark.parametrize("entrypoint, cause", [
    ("missing.py", "entrypoint 'missing.py' was not found in {channel}"),
    ("../x.py", "entrypoint '../x.py' is refused: it points outside {channel}"),
    ("{channel}/main.py", "entrypoint '{channel}/main.py' must be a path relative to {channel}"),
    ("", "entrypoint '' must be a path relative to {channel}"),
    ("escape.py", "entrypoint 'escape.py' is refused: it points outside {channel}"),
])
def test_a_bad_entrypoint_is_refused(base, write_tree, entrypoint, cause):
    channel = base / "input" / "data" / "training-code"
    write_tree(base / "input" / "data", {"x.py": "print('escaped!')"})
    (channel / "escape.py").symlink_to(base / "input" / "data" / "x.py")
    with pytest.raises(JobError) as e:
        resolve(base, hyperparameters={"entrypoint": entrypoint.format(channel=channel)})
    assert e.value.cause == cause.format(channel=channel)


def test_an_entrypoint_without_the_training_code_channel(tmp_path):
    with pytest.raises(JobError, match="entrypoint 'main.py' given but there is no 'training-code' channel"):
        resolve(tmp_path, hyperparameters={"entrypoint": "main.py"})


def test_a_missing_sagemaker_program_is_named(base):
    with pytest.raises(JobError) as e:
        resolve(base, **submitted(base, "nope.py"))
    assert e.value.cause == f"sagemaker_program 'nope.py' was not found in {base / 'code'}"


def test_how_each_kind_of_script_runs(tmp_path, monkeypatch, write_tree):
    monkeypatch.setenv("SM_ENTRYPOINT_PYTHON", sys.executable)
    write_tree(tmp_path, {"a.py": "", "b.sh": "", "c": "", "d": ""})
    os.chmod(tmp_path / "d", 0o755)
    assert script_command(str(tmp_path / "a.py"), ["--x", "1"]) == [sys.executable, str(tmp_path / "a.py"), "--x", "1"]
    assert script_command(str(tmp_path / "b.sh"), []) == ["/bin/sh", str(tmp_path / "b.sh")]
    assert script_command(str(tmp_path / "c"), []) == [sys.executable, str(tmp_path / "c")]  # not executable
    assert script_command(str(tmp_path / "d"), []) == [str(tmp_path / "d")]


FRAMEWORKS = {
    "fine.py": "def main():\n    pass\ndef other():\n    raise SystemExit(0)\n",
    "broken.py": "def main():\n    raise FileNotFoundError('framework config /etc/fw.yaml')\n",
    "exits.py": "import sys\ndef main():\n    sys.exit(4)\n",
    "multiline.py": "def main():\n    raise RuntimeError('first\\n   second')\n",
}


@pytest.fixture
def frameworks(tmp_path, monkeypatch, write_tree):
    write_tree(tmp_path / "mods", FRAMEWORKS)
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    yield
    for name in FRAMEWORKS:
        sys.modules.pop(name[:-3], None)


@pytest.mark.parametrize("spec", ["fine:main", "fine", "fine:other"])
def test_a_framework_module_that_returns_or_exits_0_succeeds(frameworks, spec):
    program.FrameworkModule(spec).run()


@pytest.mark.parametrize("spec, cause, code", [
    # sagemaker-training exits 0 here: an exception whose errno is None is not converted
    ("broken:main", "framework module broken:main failed: FileNotFoundError: framework config /etc/fw.yaml", 1),
    ("exits:main", "framework module exits:main exited with code 4", 4),
    ("multiline:main", "framework module multiline:main failed: RuntimeError: first second", 1),
])
def test_a_framework_module_that_fails_ends_the_job_with_its_cause_and_code(frameworks, spec, cause, code):
    with pytest.raises(JobError) as e:
        program.FrameworkModule(spec).run()
    assert (e.value.cause, e.value.exit_code) == (cause, code)


@pytest.mark.parametrize("spec, error", [("no_such_framework.training:main", "ModuleNotFoundError"),
                                         ("fine:nope", "AttributeError")])
def test_a_framework_module_that_cannot_be_loaded_is_named(frameworks, spec, error):
    with pytest.raises(JobError, match=f"^SAGEMAKER_TRAINING_MODULE={spec}: cannot load it: {error}"):
        program.FrameworkModule(spec).run()
