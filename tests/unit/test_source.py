"""Submitted tarballs are checked member by member before anything is extracted."""

import io
import tarfile

import pytest
from sm_entrypoint import source
from sm_entrypoint.errors import JobError


def tarball(path, members):
    """members: [(name, kind, payload)] with kind file | sym | lnk."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                info.linkname = payload
                tar.addfile(info)
    return path


@pytest.mark.parametrize("members, message", [
    ([("../up.py", "file", b"x")], "would be written outside"),
    ([("a/../../up.py", "file", b"x")], "would be written outside"),
    ([("/etc/cron.d/x", "file", b"x")], "would be written outside"),
    ([("l", "sym", "/etc")], "points outside"),
    ([("d/l", "sym", "../../..")], "points outside"),
    ([("h", "lnk", "../../etc/passwd")], "hard link"),
])
def test_escaping_members_refuse_the_whole_tarball(tmp_path, members, message):
    path = tarball(tmp_path / "src.tar.gz", [("train.py", "file", b"print(1)"), *members])
    target = tmp_path / "code"
    target.mkdir()
    with pytest.raises(JobError, match=message):
        source.extract(str(path), str(target))
    assert list(target.iterdir()) == []  # refused before anything was written


def test_links_inside_the_folder_are_fine(tmp_path):
    path = tarball(tmp_path / "src.tar.gz", [("pkg/train.py", "file", b"print(1)"), ("train.py", "sym", "pkg/train.py")])
    target = tmp_path / "code"
    target.mkdir()
    source.extract(str(path), str(target))
    assert (target / "train.py").read_text() == "print(1)"


def test_not_a_tarball(tmp_path):
    (tmp_path / "src.tar.gz").write_text("not a tarball")
    with pytest.raises(JobError, match="not a readable tarball"):
        source.stage(str(tmp_path / "src.tar.gz"), str(tmp_path / "ml"))


def test_folder_is_used_in_place_and_missing_path_is_named(tmp_path):
    assert source.stage(f"file://{tmp_path}", str(tmp_path / "ml")) == str(tmp_path)
    with pytest.raises(JobError, match="does not exist"):
        source.stage(str(tmp_path / "nope.tar.gz"), str(tmp_path / "ml"))
    with pytest.raises(JobError, match="only a folder"):
        source.stage("https://example.invalid/src.tar.gz", str(tmp_path / "ml"))


def test_non_empty_code_folder_gets_a_fresh_one(tmp_path):
    code = tmp_path / "ml" / "code"
    code.mkdir(parents=True)
    assert source.code_dir_for_extraction(str(tmp_path / "ml")) == str(code)
    (code / "stale.py").write_text("")
    fresh = source.code_dir_for_extraction(str(tmp_path / "ml"))
    assert fresh != str(code)


def test_messages_name_what_the_user_set(tmp_path):
    """serve stages SAGEMAKER_SUBMIT_DIRECTORY with the same code: its messages say that name."""
    with pytest.raises(JobError, match="^SAGEMAKER_SUBMIT_DIRECTORY .*nope.tar.gz does not exist"):
        source.stage(str(tmp_path / "nope.tar.gz"), str(tmp_path / "ml"), name="SAGEMAKER_SUBMIT_DIRECTORY")
    with pytest.raises(JobError, match="^SAGEMAKER_SUBMIT_DIRECTORY 'ftp://x/y': only a folder"):
        source.stage("ftp://x/y", str(tmp_path / "ml"), name="SAGEMAKER_SUBMIT_DIRECTORY")


def test_pip_timeout_is_one_setting_with_a_default():
    assert source.pip_timeout_s({}) == source.DEFAULT_PIP_TIMEOUT_S
    assert source.pip_timeout_s({"SM_ENTRYPOINT_PIP_TIMEOUT_SECONDS": "90"}) == 90
