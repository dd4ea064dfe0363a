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
    validation_check: bool = option(True, "Also tabulate each method checked on validation (METHOD_checked): "
                                    "per seed its run where its validation AUC beats base's, else base's run.")

    def validate(self) -> None:
        """Raises ConfigError naming unknown backbones or methods."""
        for kind, names, known in (("backbone", self.backbones, BACKBONES.names()),
                                   ("method", self.methods, methods_lib.method_names())):
            unknown = sorted(set(names) - set(known))
            if unknown:
                raise ConfigError(f"unknown {kind}(s) {unknown}; known: {', '.join(known)}")
        if self.seeds < 1:
            raise ConfigError(f"seeds must be >= 1, got {self.seeds}")


@dataclasses.dataclass(frozen=True)
class MainJobConfig:
    """The main job (sllmr-main): which data, teacher and training protocol, which methods to
    compare, and where. The stages read their settings from their flagfiles (flags/)."""

    work_dir: str = option("work_dir/demo", "Output: data/, pairs/, experiment/, export/ and comparison.md.")
    prepare_flagfile: str = option("flags/prepare_movielens100k.flags",
                                   "sllmr-prepare's flagfile: the dataset (your own: a csv source's flagfile).")
    score_flagfile: str = option("flags/score_embedding.flags", "sllmr-score's flagfile: the LLM teacher.")
    train_flagfile: str = option("flags/train_protocol.flags", "sllmr-train's flagfile: the training protocol.")
    backbones: tuple[str, ...] = option(("deepfm",), "Backbones to train (the first one's run is exported).")
    methods: tuple[str, ...] = option(("base", "kd", "sllmr"), "Methods to compare (base must be one).")
    seeds: int = option(3, "Seeds 0..seeds-1 per backbone and method (the intervals are over seeds).")
    export_method: str = option("sllmr", "The method whose seed-0 run of the first backbone is exported where it "
                                "beats base on validation (else base's run is).")

    def validate(self) -> None:
        """Raises ConfigError naming unknown backbones or methods, or a comparison without base."""
        # Only the names are checked here: the experiment stage gets its own work_dir from main_job.Layout.
        ExperimentConfig(work_dir=self.work_dir, backbones=self.backbones, methods=self.methods,
                         seeds=self.seeds).validate()
        if "base" not in self.methods:
            raise ConfigError(f"methods must include base (the comparison is against it), got {','.join(self.methods)}")
        if self.export_method not in self.methods:
            raise ConfigError(f"export_method {self.export_method!r} is not one of the methods "
                              f"{','.join(self.methods)}")
