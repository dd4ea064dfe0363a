"""The settings of `sllmr-prepare`: every choice that changes the prepared data (`PrepareConfig`),
and where its pipeline runs (`RunnerConfig`), which changes nothing in the data."""
from __future__ import annotations

import dataclasses

from sllmr_tf.data.readers import SOURCES
from sllmr_tf.errors import ConfigError
from sllmr_tf.options import option

LABEL_RULES = ("threshold", "implicit")
# sllmr-prepare flags that set a field of the synthetic world's WorldConfig (others: raw_dir/world.json).
SYNTHETIC_FLAGS = {"synthetic_users": "num_users", "synthetic_items": "num_items", "synthetic_seed": "seed"}
BAD_RECORD_MODES = ("error", "skip")
SHARD_BY = ("user",)
# "local" is Beam's FnApiRunner on this machine; the others are Beam's runners of those names.
RUNNERS = ("local", "DataflowRunner", "FlinkRunner", "SparkRunner", "PortableRunner")


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """What `prepare` does to the raw data; with the raw files it names the dataset version (lineage.py).

    The defaults are the evaluation protocol of DESIGN.md section 4 on explicit
    ratings: leave-last-12-out with 9 sampled negatives per held-out positive,
    so a MovieLens-100k-sized test set measures AUC to about +-0.005.
    """

    dataset: str = option("movielens100k", "Raw source to read.", choices=SOURCES.names)
    raw_dir: str | None = option(None, "Folder of the raw files (default: bundled data / generated world).")
    category: str | None = option(None, "Amazon category when raw_dir holds several.")
    kcore: int = option(0, "Keep users and items with >= k interactions (0: no filter).")
    label_rule: str = option("threshold", "threshold: rating >= positive_threshold is positive; "
                             "implicit: every event is positive.", choices=LABEL_RULES)
    positive_threshold: float = option(4.0, "Rating at or above which an event is positive.")
    test_k: int = option(12, "Each user's last k events go to test (leave-last-k-out).")
    valid_k: int = option(2, "The k events before the test events go to valid.")
    train_negatives: int = option(1, "Sampled negatives per train positive.")
    eval_negatives: int = option(9, "Sampled negatives per valid/test positive.")
    cold_user_fraction: float = option(0.0, "Share of users cut to --cold_user_train_items train events.")
    cold_user_train_items: int = option(2, "Train events kept for users picked by --cold_user_fraction.")
    num_shards: int = option(4, "TFRecord shards per split.")
    shard_by: str = option("user", "How records are spread over shards: user puts all of a user's records "
                           "in shard stable_hash(raw user id) % num_shards (shards.user_shard).", choices=SHARD_BY)
    seed: int = option(0, "Seed of every random choice (negatives, truncation, shuffles).")
    on_bad_record: str = option("error", "Stop on a malformed record, or skip and count it.",
                                choices=BAD_RECORD_MODES)
    source_options: tuple[tuple[str, object], ...] = ()  # e.g. the synthetic world's size

    def validate(self) -> None:
        """Raises ConfigError naming the first invalid setting."""
        if self.dataset not in SOURCES.names():
            raise ConfigError(f"unknown dataset {self.dataset!r}; known: {', '.join(SOURCES.names())}")
        if self.label_rule not in LABEL_RULES:
            raise ConfigError(f"label_rule must be one of {LABEL_RULES}, got {self.label_rule!r}")
        if self.shard_by not in SHARD_BY:
            raise ConfigError(f"shard_by must be one of {SHARD_BY}, got {self.shard_by!r}")
        if self.on_bad_record not in BAD_RECORD_MODES:
            raise ConfigError(f"on_bad_record must be one of {BAD_RECORD_MODES}, got {self.on_bad_record!r}")
        for name in ("test_k", "valid_k", "num_shards"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("kcore", "train_negatives", "eval_negatives", "cold_user_train_items"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.cold_user_fraction < 1.0:
            raise ConfigError(f"cold_user_fraction must be in [0, 1), got {self.cold_user_fraction}")


@dataclasses.dataclass(frozen=True)
class RunnerConfig:
    """Where the prepare pipeline runs. Not part of the dataset fingerprint: every runner writes the same bytes."""

    runner: str = option("local", "Apache Beam runner: local (this machine) or DataflowRunner, FlinkRunner, "
                         "SparkRunner, PortableRunner; give the runner's own options after --.",
                         choices=RUNNERS)
    direct_num_workers: int = option(1, "Local runner: worker processes; 1 runs the pipeline in this process, "
                                     "0 starts one per core.")
    pipeline_args: tuple[str, ...] = ()  # the runner's options, e.g. ("--project=p", "--region=r")

    def validate(self) -> None:
        """Raises ConfigError naming the first invalid setting."""
        if self.runner not in RUNNERS:
            raise ConfigError(f"runner must be one of {RUNNERS}, got {self.runner!r}")
        if self.direct_num_workers < 0:
            raise ConfigError(f"direct_num_workers must be >= 0, got {self.direct_num_workers}")
        if self.runner != "local" and self.direct_num_workers != 1:
            raise ConfigError(f"--direct_num_workers is for the local runner; {self.runner} takes "
                              "its own parallelism options after --")
