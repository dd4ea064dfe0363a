"""One export, start to finish: what sllmr-export does.

finished run -> its backbone (artifacts.load_backbone) -> the serving module
(signatures.py) -> tf.saved_model.save + warmup requests + the run's identity,
all in a staging folder that becomes the version only when complete (versions.py).
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf

from sllmr_tf import fileio
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.export import contract, identity, signatures, versions, warmup
from sllmr_tf.export.config import ExportConfig
from sllmr_tf.export.examples import split_examples
from sllmr_tf.training import artifacts


def export_run(config: ExportConfig, log: Callable[[str], None] = print) -> str:
    """Export a finished run's backbone as a new SavedModel version.

    Args:
        config: the run, the base path and the version (validated here).
        log: where the one summary line goes.

    Returns:
        The version folder.

    Raises:
        UserError: bad settings, a model_dir that is not a finished run, a dataset that is not
            the run's, or an existing version.
    """
    config.validate()
    _, metrics = artifacts.finished_run(config.model_dir)
    data = DatasetDir(config.data_dir or metrics["data_dir"])
    artifacts.check_dataset(config.model_dir, data)
    version = config.version or versions.next_version(config.export_base)
    backbone = artifacts.load_backbone(config.model_dir)
    module = signatures.serving_module(backbone)
    logs = warmup.warmup_logs(split_examples(data.path, config.warmup_examples))

    def write(folder: str) -> None:
        tf.saved_model.save(module, folder, signatures=signatures.signature_map(module))
        warmup.write_warmup(folder, logs)
        fileio.write_json(fileio.join(folder, warmup.ASSETS_EXTRA, identity.RUN_FILE),
                          identity.run_identity(config.model_dir))

    path = versions.publish(config.export_base, version, write)
    log(f"exported {metrics['backbone']} / {metrics['method']} from {config.model_dir} as version {version}: "
        f"{path} (signatures {', '.join(contract.SIGNATURES)}; {len(logs)} warmup requests)")
    return path
