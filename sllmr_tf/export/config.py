"""The settings of `sllmr-export` and of the REST request generator (no TensorFlow import)."""
from __future__ import annotations

import dataclasses

from sllmr_tf.data.dataset_dir import SPLITS
from sllmr_tf.errors import ConfigError
from sllmr_tf.options import option


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """Which finished run to export, and where."""

    model_dir: str = option(help="A finished sllmr-train model_dir (it has metrics.json).")
    export_base: str = option(help="TF Serving's --model_base_path: the export goes to <export_base>/<version>/.")
    version: int | None = option(None, "Version folder to write (default: one above the highest present); "
                                 "an existing version is never replaced.")
    data_dir: str | None = option(None, "Dataset the warmup requests come from (default: the run's own); "
                                  "its vocabularies must be the run's.")
    warmup_examples: int = option(16, "Test examples in the larger warmup request of each signature "
                                  "(the other has one).")

    def validate(self) -> None:
        """Raises ConfigError naming the first invalid setting."""
        if self.version is not None and self.version < 1:
            raise ConfigError(f"version must be >= 1, got {self.version}")
        if self.warmup_examples < 1:
            raise ConfigError(f"warmup_examples must be >= 1, got {self.warmup_examples}")


@dataclasses.dataclass(frozen=True)
class RequestConfig:
    """A REST predict body of real examples (`python -m sllmr_tf.export.request`)."""

    data_dir: str = option(help="Prepared dataset directory the examples come from.")
    output: str = option(help="Where to write the JSON body.")
    num_examples: int = option(4, "Examples in the body (the split's first ones).")
    split: str = option("test", "Split the examples come from.", choices=SPLITS)

    def validate(self) -> None:
        if self.num_examples < 1:
            raise ConfigError(f"num_examples must be >= 1, got {self.num_examples}")
