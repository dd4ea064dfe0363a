"""sllmr-export: a finished run's backbone as a SavedModel version for TF Serving.

    sllmr-export --model_dir=DIR --export_base=OUT [--version=N]

Writes OUT/<version>/ (saved_model.pb, variables/, assets.extra/ with warmup
requests and the run's identity); the signatures are in sllmr_tf/export/contract.py.
Serve it with tensorflow_model_server --model_base_path=OUT (README, "Serving").
"""
from __future__ import annotations

from typing import Sequence

from sllmr_tf.bins import common, config_flags
from sllmr_tf.export.config import ExportConfig

config_flags.define(ExportConfig)


def main(argv: Sequence[str]) -> None:
    config = config_flags.build(ExportConfig)
    from sllmr_tf.export.exporter import export_run

    export_run(config)


def run() -> None:
    common.run(main, __name__, __doc__)


if __name__ == "__main__":
    run()
