"""Which hooks answer a request, and the user script's loading: the user's first, then the
image's defaults, then the generic codecs; the errors a wrong script gets."""

import types

import numpy as np
import pytest
from sm_entrypoint.serving import handlers, user_script
from sm_entrypoint.serving.errors import ConfigError, reason_of, status_of
from sm_entrypoint.serving.settings import ServingSettings


def module(**hooks):
    return types.SimpleNamespace(**hooks)


def test_input_predict_output_from_the_script():
    user = module(model_fn=lambda d: 2,
                  input_fn=lambda body, ctype: [int(body)],
                  predict_fn=lambda data, model: [data[0] * model],
                  output_fn=lambda pred, accept: (f"{pred[0]}", "text/plain"))
    h = handlers.resolve(user)
    model = h.load_model("/m")
    assert h.transform(model, b"21", "text/csv", "text/plain") == (b"42", "text/plain")


def test_transform_fn_alone_decides_and_its_tuple_names_the_type():
    h = handlers.resolve(module(model_fn=lambda d: None, transform_fn=lambda m, b, c, a: (b + b"!", "x/y")))
    assert h.transform(None, b"hi", "text/csv", "text/csv") == (b"hi!", "x/y")
    h = handlers.resolve(module(model_fn=lambda d: None, transform_fn=lambda m, b, c, a: "plain"))
    assert h.transform(None, b"", "text/csv", "text/csv") == (b"plain", "text/csv")


def test_transform_fn_with_the_three_steps_is_refused():
    with pytest.raises(ConfigError, match="defines transform_fn and input_fn, predict_fn"):
        handlers.resolve(module(model_fn=lambda d: 0, transform_fn=lambda *a: b"", input_fn=lambda *a: 0,
                                predict_fn=lambda *a: 0))


def test_image_defaults_fill_what_the_script_leaves_out():
    defaults = module(model_fn=lambda d: "default model", predict_fn=lambda data, model: data * 10)
    h = handlers.resolve(None, defaults)
    model = h.load_model("/m")
    assert model == "default model"
    assert h.transform(model, b"1,2\n", "text/csv", "text/csv") == (b"10.0,20.0", "text/csv")
    user = module(model_fn=lambda d: "mine")
    assert handlers.resolve(user, defaults).load_model("/m") == "mine"
    assert "predict_fn: image default" in handlers.resolve(user, defaults).source


def test_with_no_predict_fn_a_callable_model_is_called():
    h = handlers.resolve(module(model_fn=lambda d: (lambda x: x + 1)))
    assert h.transform(h.load_model("/m"), b"[1, 2]", "application/json", "application/json") == (
        b"[2, 3]", "application/json")


def test_no_model_fn_anywhere_is_refused_at_start():
    with pytest.raises(ConfigError, match="no model_fn"):
        handlers.resolve(module(predict_fn=lambda d, m: d), None)


def test_model_fn_with_a_context_argument_gets_one():
    seen = []
    h = handlers.resolve(module(model_fn=lambda model_dir, context: seen.append((model_dir, context))))
    h.load_model("/m")
    assert seen == [("/m", None)]


def test_a_response_that_is_not_bytes_is_the_scripts_error():
    h = handlers.resolve(module(model_fn=lambda d: 0, transform_fn=lambda *a: 42))
    with pytest.raises(TypeError, match="response must be bytes or str, not int"):
        h.transform(0, b"", "text/csv", "text/csv")


def test_the_default_accept_check_applies_only_to_the_default_output_fn():
    plain = handlers.resolve(module(model_fn=lambda d: 0))
    assert handlers.check_accept(plain, "", "text/csv; charset=utf-8") == "text/csv"
    own = handlers.resolve(module(model_fn=lambda d: 0, output_fn=lambda p, a: b""))
    assert handlers.check_accept(own, "image/png", "text/csv") == "image/png"


def test_statuses_and_reasons_of_failures():
    class ToolkitError(Exception):  # sagemaker-inference's errors carry status_code and message
        def __init__(self):
            super().__init__()
            self.status_code, self.message = 415, "Content type x is not supported"

    assert (status_of(ToolkitError()), reason_of(ToolkitError())) == (415, "Content type x is not supported")
    assert (status_of(ValueError("bad\nmore")), reason_of(ValueError("bad\nmore"))) == (500, "ValueError: bad")
    mxnet_style = RuntimeError("Traceback (most recent call last):\n  File x\nMXNetError: shape mismatch")
    assert reason_of(mxnet_style) == "RuntimeError: MXNetError: shape mismatch"


def settings(tmp_path, **env):
    return ServingSettings.from_env({"SM_MODEL_DIR": str(tmp_path), **env})


def test_the_script_is_code_inference_py_in_the_model(tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "helper.py").write_text("FACTOR = 3\n")
    (tmp_path / "code" / "inference.py").write_text(
        "from helper import FACTOR\ndef model_fn(d):\n    return FACTOR\n")
    path = user_script.script_path(settings(tmp_path))
    assert path == str(tmp_path / "code" / "inference.py")
    assert user_script.load(path).model_fn("/m") == 3  # its neighbours import


def test_no_script_is_fine_when_the_image_has_defaults(tmp_path):
    assert user_script.script_path(settings(tmp_path)) is None


def test_a_named_script_or_folder_that_is_missing_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="inference script .*/code/serve.py does not exist"):
        user_script.script_path(settings(tmp_path, SAGEMAKER_PROGRAM="serve.py"))
    with pytest.raises(ConfigError, match="SAGEMAKER_SUBMIT_DIRECTORY=/nowhere is not a folder"):
        user_script.script_path(settings(tmp_path, SAGEMAKER_SUBMIT_DIRECTORY="/nowhere"))


def test_a_script_that_fails_to_import_is_refused_in_one_line(tmp_path):
    (tmp_path / "broken.py").write_text("import no_such_module_here\n")
    with pytest.raises(ConfigError, match="importing .*broken.py failed: ModuleNotFoundError"):
        user_script.load(str(tmp_path / "broken.py"))


def test_default_handlers_module_that_does_not_import_is_refused():
    with pytest.raises(ConfigError, match="SAGEMAKER_DEFAULT_HANDLERS=no.such.module cannot be imported"):
        user_script.load_defaults("no.such.module")
    assert user_script.load_defaults("") is None


def test_numpy_arrays_pass_between_the_default_steps():
    h = handlers.resolve(module(model_fn=lambda d: 0, predict_fn=lambda data, m: np.asarray(data).sum(axis=1)))
    assert h.transform(0, b"1,2\n3,4\n", "text/csv", "application/json") == (b"[3.0, 7.0]", "application/json")


def test_an_iterator_from_transform_fn_or_output_fn_streams_item_by_item():
    h = handlers.resolve(module(model_fn=lambda d: None,
                                transform_fn=lambda m, b, c, a: ((f"{i}," for i in range(3)), "text/plain")))
    chunks, ctype = h.transform(None, b"", "text/csv", "text/csv")
    assert handlers.is_stream(chunks) and ctype == "text/plain" and list(chunks) == [b"0,", b"1,", b"2,"]
    h = handlers.resolve(module(model_fn=lambda d: abs, output_fn=lambda p, a: iter([b"a", "b"])))
    chunks, _ = h.transform(abs, b"1", "text/csv", "text/csv")
    assert list(chunks) == [b"a", b"b"]


def test_a_predict_fn_iterator_gets_output_fn_on_each_item_the_defaults_ending_each_line():
    h = handlers.resolve(module(model_fn=lambda d: 3, predict_fn=lambda data, m: (data * m for _ in range(2))))
    chunks, ctype = h.transform(3, b"[1, 2]", "application/json", "application/json")
    assert ctype == "application/json" and list(chunks) == [b"[3, 6]\n", b"[3, 6]\n"]
    h = handlers.resolve(module(model_fn=lambda d: 0, predict_fn=lambda data, m: iter(["x", "y"]),
                                output_fn=lambda p, a: (p.upper(), "text/plain")))
    assert list(h.transform(0, b"1", "text/csv", "text/plain")[0]) == [b"X", b"Y"]


def test_closing_a_stream_closes_the_users_generator():
    closed = []

    def pieces():
        try:
            yield "a"
            yield "b"
        finally:
            closed.append(True)

    h = handlers.resolve(module(model_fn=lambda d: 0, transform_fn=lambda m, b, c, a: pieces()))
    chunks, _ = h.transform(0, b"", "text/csv", "text/csv")
    assert next(chunks) == b"a"
    chunks.close()
    assert closed == [True]


def test_lists_arrays_and_bytes_are_not_streams():
    for value in ([1], np.zeros(2), b"x", "x", (b"x", "text/plain")):
        assert not handlers.is_stream(value)
