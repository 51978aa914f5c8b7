"""Which hooks answer a request: the user's (model_fn, and transform_fn or input_fn / predict_fn /
output_fn), else the image's framework defaults, else the generic codecs. Signatures are those of
AWS's inference toolkits, so scripts written for AWS's images run unchanged: each hook may take a
`context` (context.py) as one argument more, as sagemaker-inference and TorchServe pass it."""

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Callable, Optional

from . import codecs
from .errors import ConfigError

STEPS = ("input_fn", "predict_fn", "output_fn")


def default_input_fn(body, content_type):
    return codecs.decode(body, content_type)


def default_output_fn(prediction, accept):
    return codecs.encode(prediction, accept)


def _call_model(data, model):
    if callable(model):
        return model(data)
    raise ConfigError("no predict_fn: the inference script must define predict_fn (or transform_fn), "
                      "or model_fn must return a callable model")


def _takes(fn, count):
    """Whether `fn` takes `count` positional arguments: the hook's own, and the context after them
    (model_fn(model_dir, context), input_fn(data, content_type, context), ...)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= count or any(p.kind == p.VAR_POSITIONAL for p in params)


# Each hook's own positional arguments; one more means it takes the context.
ARITY = {"model_fn": 1, "transform_fn": 4, "input_fn": 2, "predict_fn": 2, "output_fn": 2}


@dataclass(frozen=True)
class Handlers:
    model_fn: Callable
    transform_fn: Optional[Callable]  # the user's whole transform, or None for the three steps
    input_fn: Callable = default_input_fn
    predict_fn: Callable = _call_model
    output_fn: Callable = default_output_fn
    source: str = ""  # where each hook came from, for the start-up log
    # The hooks that take a context, read from their signatures once, not on every request.
    context_hooks: frozenset = field(init=False)

    def __post_init__(self):
        hooks = {name: getattr(self, name) for name in ARITY}
        object.__setattr__(self, "context_hooks", frozenset(
            name for name, fn in hooks.items() if fn is not None and _takes(fn, ARITY[name] + 1)))

    @property
    def takes_context(self):
        """Whether a request's hooks take a context (else none is made for it)."""
        return bool(self.context_hooks - {"model_fn"})

    def _call(self, name, context, *args):
        fn = getattr(self, name)
        return fn(*args, context) if name in self.context_hooks else fn(*args)

    def load_model(self, model_dir, context=None):
        return self._call("model_fn", context, model_dir)

    def transform(self, model, body, content_type, accept, context=None):
        """-> (response bytes, or an iterator of them to stream, one chunk each; content type).
        A predict_fn that returns an iterator has output_fn called on each item; an output_fn or
        transform_fn that returns one has each item sent as it is."""
        if self.transform_fn:
            result = self._call("transform_fn", context, model, body, content_type, accept)
        else:
            data = self._call("input_fn", context, body, content_type)
            prediction = self._call("predict_fn", context, data, model)
            if is_stream(prediction):
                return self._each_output(prediction, accept, context), accept
            result = self._call("output_fn", context, prediction, accept)
        body, ctype = result if isinstance(result, tuple) else (result, accept)
        if is_stream(body):
            return _mapped(body, as_bytes), ctype
        return as_bytes(body), ctype

    def _each_output(self, predictions, accept, context):
        """output_fn on each streamed item; the default one ends each item with a newline (JSON
        Lines, one CSV line an item), so the chunks joined still parse."""
        end = b"\n" if self.output_fn is default_output_fn and accept != codecs.NPY else b""

        def output(prediction):
            return as_bytes(self._call("output_fn", context, prediction, accept)) + end

        return _mapped(predictions, output)


def _mapped(items, fn):
    """fn over a stream's items; closing it closes the stream (a client that went away stops
    the user's generator)."""
    try:
        for item in items:
            yield fn(item)
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


def is_stream(value):
    """A generator or other iterator (not bytes, text, an array or a list): answered in chunks."""
    return isinstance(value, Iterator) and not isinstance(value, (str, bytes, bytearray))


def as_bytes(body):
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, tuple) and body and isinstance(body[0], (bytes, str)):  # a streamed (item, type)
        return as_bytes(body[0])
    raise TypeError(f"the response must be bytes or str, not {type(body).__name__} "
                    "(output_fn or transform_fn returned it)")


def resolve(user=None, defaults=None):
    """Hooks from the user's module first, then the image's defaults, then the generic ones."""

    def pick(name):
        for origin, module in (("inference script", user), ("image default", defaults)):
            fn = getattr(module, name, None) if module is not None else None
            if fn is not None:
                if not callable(fn):
                    raise ConfigError(f"{name} in the {origin} is not a function")
                return fn, origin
        return None, None

    model_fn, model_origin = pick("model_fn")
    if model_fn is None:
        raise ConfigError("no model_fn: the inference script (code/inference.py in the model, or "
                          "SAGEMAKER_PROGRAM) must define model_fn(model_dir)")
    user_transform = getattr(user, "transform_fn", None) if user is not None else None
    user_steps = [s for s in STEPS if user is not None and getattr(user, s, None) is not None]
    if user_transform and user_steps:
        raise ConfigError(f"the inference script defines transform_fn and {', '.join(user_steps)}: "
                          "define transform_fn alone, or input_fn/predict_fn/output_fn")
    if user_transform:
        return Handlers(model_fn, user_transform, source=f"model_fn: {model_origin}, transform_fn: inference script")
    hooks, sources = {}, [f"model_fn: {model_origin}"]
    for step in STEPS:
        fn, origin = pick(step)
        if fn is not None:
            hooks[step] = fn
            sources.append(f"{step}: {origin}")
    if "predict_fn" not in hooks:
        sources.append("predict_fn: model(data)")
    return Handlers(model_fn, None, source=", ".join(sources), **hooks)


def check_accept(handlers, accept, content_type):
    """The Accept the default output_fn can honour, resolved before any work; a user's own
    output_fn or transform_fn gets the header as sent (it decides)."""
    if handlers.transform_fn or handlers.output_fn is not default_output_fn:
        return accept or codecs.media_type(content_type)
    return codecs.choose_accept(accept, codecs.media_type(content_type))
