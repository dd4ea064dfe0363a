"""The settings of `sllmr-prepare`: every choice that changes the prepared data."""
from __future__ import annotations

import dataclasses
import hashlib
import json

from sllmr_tf.data.readers import SOURCES
from sllmr_tf.errors import ConfigError
from sllmr_tf.options import option

LABEL_RULES = ("threshold", "implicit")
# sllmr-prepare flags that set a field of the synthetic world's WorldConfig (others: raw_dir/world.json).
SYNTHETIC_FLAGS = {"synthetic_users": "num_users", "synthetic_items": "num_items", "synthetic_seed": "seed"}
BAD_RECORD_MODES = ("error", "skip")


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """What `prepare` does to the raw data; its fingerprint names the dataset version.

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

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True,
                                         default=str).encode()).hexdigest()[:16]
