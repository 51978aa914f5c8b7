"""Runs one batch transform through the real SageMaker Python SDK 2.x local mode: a Model from a
local model.tar.gz, its transformer, and transform() over a local folder of CSV files.
Run with the SDK 2.x virtual environment's python; prints one JSON line with the outcome.

    python sdk2_transform.py --image IMG --model-data FILE.tar.gz --input DIR --output DIR
                             [--strategy MultiRecord|SingleRecord] [--port P]
"""

import argparse
import json
import sys
import traceback

from sagemaker.local import LocalSession
from sagemaker.model import Model

ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--model-data", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--strategy", default="MultiRecord")
    ap.add_argument("--port", type=int, default=8080, help="the serving container's port on this machine")
    args = ap.parse_args()

    session = LocalSession()
    session.config = {"local": {"local_code": True, "serving_port": args.port}}
    model = Model(image_uri=args.image, model_data=f"file://{args.model_data}", role=ROLE,
                  sagemaker_session=session)
    transformer = model.transformer(instance_count=1, instance_type="local", strategy=args.strategy,
                                    assemble_with="Line", accept="text/csv", output_path=f"file://{args.output}")
    outcome = {"ok": True}
    try:
        transformer.transform(f"file://{args.input}", content_type="text/csv", split_type="Line",
                              wait=True, logs=False)  # logs=True reads CloudWatch, even locally
    except Exception as e:  # noqa: BLE001 - the test reads the outcome
        traceback.print_exc()
        outcome = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    outcome.update(output=args.output)  # local mode writes <input file>.out straight there
    print("SDK_OUTCOME " + json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
