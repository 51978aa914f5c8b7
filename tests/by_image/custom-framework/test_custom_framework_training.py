"""custom-framework: jobs that succeed through the image's own framework module, Python and pip,
and on several hosts. How each shape of job SageMaker and the SDKs hand over is resolved (folder,
tarball, file://, JSON-encoded hyperparameters, the entrypoint hyperparameter) and the argv the
script receives are plain Python, tested in tests/unit (test_arguments.py, test_train.py,
test_program_resolve.py)."""

import json
import zipfile

import pytest

from smimages.sample_job import example_job
from smimages.testing.harness import MLJob, make_tarball, run_job, write_tree

ECHO_ARGS = """
import json, os, sys
os.makedirs(os.environ["SM_MODEL_DIR"], exist_ok=True)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "argv.json"), "w") as f:
    json.dump({"argv": sys.argv[1:], "hps": json.loads(os.environ["SM_HPS"]),
               "framework": os.environ.get("CUSTOM_FRAMEWORK_CONFIG")}, f)
print("script ran with", sys.argv[1:])
"""


def argv_of(result):
    return json.loads((result.model / "argv.json").read_text())


def test_submit_tarball_path_receives_hyperparameters_as_arguments(image, tmp_path):
    tarball = make_tarball(tmp_path / "sourcedir.tar.gz", {"train.py": ECHO_ARGS})
    job = MLJob(tmp_path / "ml", channels={"code": {"sourcedir.tar.gz": tarball}}, hyperparameters={
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": "/opt/ml/input/data/code/sourcedir.tar.gz", "hp1": "value1"})
    [r] = run_job(image, job)
    r.ok()
    assert argv_of(r)["argv"] == ["--hp1", "value1"]
    assert json.loads(argv_of(r)["framework"])["framework"] == "custom-framework"  # module configured it


def tiny_wheel(folder):
    """A minimal pure-Python wheel, written by hand: no build tools and no network needed."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tinypkg-0.1-py3-none-any.whl"
    files = {"tinypkg/__init__.py": "ANSWER = 42\n",
             "tinypkg-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
             "tinypkg-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    with zipfile.ZipFile(path, "w") as whl:
        for name, text in files.items():
            whl.writestr(name, text)
        whl.writestr("tinypkg-0.1.dist-info/RECORD", "".join(f"{n},," + "\n" for n in [*files, "tinypkg-0.1.dist-info/RECORD"]))
    return path


def test_requirements_txt_is_installed_before_the_script_runs(image, tmp_path):
    tiny_wheel(tmp_path / "src" / "wheels")
    write_tree(tmp_path / "src", {
        "requirements.txt": "--no-index\n--find-links wheels\ntinypkg==0.1\n",
        "train.py": "import tinypkg, os\nopen(os.environ['SM_MODEL_DIR'] + '/answer', 'w').write(str(tinypkg.ANSWER))\n"})
    job = MLJob(tmp_path / "ml", hyperparameters={"sagemaker_program": "train.py",
                                                  "sagemaker_submit_directory": "/opt/ml/code"})
    write_tree(job.tree("algo-1") / "code", {p.relative_to(tmp_path / "src").as_posix(): p
                                             for p in (tmp_path / "src").rglob("*") if p.is_file()})
    [r] = run_job(image, job)
    r.ok()
    assert (r.model / "answer").read_text() == "42"


def test_example_script_trains_on_train_and_validation_channels(image, tmp_path):
    job = example_job(tmp_path)
    [r] = run_job(image, job)
    r.ok()
    assert "framework configuration:" in r.logs and "epoch 40/40" in r.logs
    metrics = json.loads((r.model / "metrics.json").read_text())
    assert metrics["validation_loss"] < 0.1
    assert json.loads((r.model / "model.json").read_text())["weights"][0] == pytest.approx(2, abs=0.3)


def test_two_hosts_lose_nothing_when_the_first_to_exit_stops_the_others(image, tmp_path):
    """Local mode stops every host when one exits: the worker must wait for the master's save."""
    script = """
import json, os, time
env = json.loads(os.environ["SM_TRAINING_ENV"])
if env["current_host"] == env["master_hostname"]:
    time.sleep(4)  # the master evaluates and saves after the worker is done
    open(os.path.join(os.environ["SM_MODEL_DIR"], "model.bin"), "w").write("saved by " + env["current_host"])
print("done on", env["current_host"])
"""
    job = MLJob(tmp_path / "ml", hosts=("algo-1", "algo-2"), shared_model_dir=True,
                channels={"training-code": {"main.py": script}}, hyperparameters={"entrypoint": "main.py"})
    results = run_job(image, job, stop_all_when_one_exits=True)
    for r in results:
        r.ok()
    assert (job.model_dir("algo-1") / "model.bin").read_text() == "saved by algo-1"
    assert "waiting for algo-1 to finish" in results[1].logs
