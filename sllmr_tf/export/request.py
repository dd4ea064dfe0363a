"""A REST predict body of real test examples, as TF Serving's /v1/models/<name>:predict takes it.

    python -m sllmr_tf.export.request --data_dir=work_dir/ml100k --output=input/serving/predict_request.json

The body names the signature and sends each example as {"examples": {"b64": ...}}
(TF Serving's row format; binary values go base64-encoded under "b64").
"""
from __future__ import annotations

import base64
import json
from typing import Sequence

from sllmr_tf.bins import common, config_flags
from sllmr_tf.export import contract
from sllmr_tf.export.config import RequestConfig


def predict_body(examples: Sequence[bytes]) -> dict:
    """The REST predict body for serving_default over serialized tf.train.Examples."""
    return {"signature_name": contract.SERVING_DEFAULT,
            "instances": [{contract.EXAMPLES: {"b64": base64.b64encode(e).decode("ascii")}} for e in examples]}


def main(argv: Sequence[str]) -> None:
    config = config_flags.build(RequestConfig)
    config.validate()
    from sllmr_tf import fileio
    from sllmr_tf.export.examples import split_examples

    body = predict_body(split_examples(config.data_dir, config.num_examples, config.split))
    fileio.write_atomic(config.output, json.dumps(body, indent=1) + "\n")
    print(f"{config.output}: {len(body['instances'])} {config.split} examples of {config.data_dir}")


if __name__ == "__main__":
    config_flags.define(RequestConfig)
    common.run(main, __name__, __doc__)
