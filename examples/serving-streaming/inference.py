"""A streamed answer, for InvokeEndpointWithResponseStream: each word of the request comes back as
its own chunk, a second apart, as a text generator emits its tokens. Any hook that returns a
generator (transform_fn here; predict_fn or output_fn as well) is streamed by the images' server:
HTTP/1.1 chunked encoding, one chunk an item, sent as it is made (docs/contract.md, "Response
streaming"). Put it in the model as code/inference.py; EXAMPLE_TOKEN_DELAY_S sets the pause."""

import os
import time


def model_fn(model_dir):
    return {"delay_s": float(os.environ.get("EXAMPLE_TOKEN_DELAY_S", "1"))}


def transform_fn(model, body, content_type, accept):
    words = body.decode("utf-8").split()

    def tokens():
        for i, word in enumerate(words):
            if i:
                time.sleep(model["delay_s"])  # the model working on its next token
            yield word + ("\n" if i == len(words) - 1 else " ")

    return tokens(), "text/plain"
