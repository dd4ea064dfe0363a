"""The settings of `sllmr-experiment` beside the training settings every run shares."""
from __future__ import annotations

import dataclasses

from sllmr_tf.errors import ConfigError
from sllmr_tf.models.backbones import BACKBONES
from sllmr_tf.options import option
from sllmr_tf.training import methods as methods_lib

# TrainConfig fields the experiment sets per run.
PER_RUN = ("model_dir", "backbone", "method", "seed")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Which backbones, methods and seeds to train, and where."""

    work_dir: str = option(help="Output: runs/ and results.{md,csv,png}.")
    backbones: tuple[str, ...] = option(("deepfm",), "Backbones to train.")
    methods: tuple[str, ...] = option(("base", "kd", "heuristic", "sllmr"), "Methods to train.")
    seeds: int = option(3, "Seeds 0..seeds-1 per backbone and method.")

    def validate(self) -> None:
        """Raises ConfigError naming unknown backbones or methods."""
        for kind, names, known in (("backbone", self.backbones, BACKBONES.names()),
                                   ("method", self.methods, methods_lib.method_names())):
            unknown = sorted(set(names) - set(known))
            if unknown:
                raise ConfigError(f"unknown {kind}(s) {unknown}; known: {', '.join(known)}")
        if self.seeds < 1:
            raise ConfigError(f"seeds must be >= 1, got {self.seeds}")
