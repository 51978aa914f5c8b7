"""`serve`: start the image's model server, named by SAGEMAKER_SERVING_MODULE (module:function),
which each serving image sets."""

import importlib
import logging
import os

log = logging.getLogger("sm_entrypoint")


def run():
    spec = os.environ.get("SAGEMAKER_SERVING_MODULE")
    if not spec:
        log.error("this image does not serve models: SAGEMAKER_SERVING_MODULE is not set")
        return 2
    module, _, function = spec.partition(":")
    try:
        target = getattr(importlib.import_module(module), function or "main")
    except (ImportError, AttributeError) as e:
        log.error("SAGEMAKER_SERVING_MODULE=%s cannot be loaded: %s", spec, e)
        return 2
    result = target()
    return result if isinstance(result, int) else 0
