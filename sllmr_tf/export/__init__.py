"""Export of a finished run for TF Serving (`sllmr-export`).

    export_base/                        TF Serving's --model_base_path
      <version>/                        one numeric folder per export; TF Serving serves the highest
        saved_model.pb                  the signatures of contract.py, over the backbone alone
        variables/                      the backbone's weights
        fingerprint.pb
        assets.extra/
          tf_serving_warmup_requests    PredictionLog records of real test examples (warmup.py)
          sllmr_run.json                which run this is (identity.py)

A version folder appears complete or not at all (versions.py). This package's
modules import TensorFlow only where they build or read graphs: `config` and
`contract` are light, so the binary's --help stays instant.
"""
