"""The settings of `sllmr-train`, `sllmr-eval` and `sllmr-experiment`."""
from __future__ import annotations

import dataclasses

from sllmr_tf.errors import ConfigError
from sllmr_tf.models.backbones import BACKBONES
from sllmr_tf.models.config import BackboneConfig
from sllmr_tf.options import option
from sllmr_tf.scoring.embedding_backend import EMBEDDING_DIM
from sllmr_tf.training import methods as methods_lib

SPLITS = ("valid", "test", "train")
STRATEGIES = ("default", "mirrored", "multi_worker")  # training/distribution.py
# Settings only methods with LLM pairs read: a base run is the same run whatever they are.
PAIR_SETTINGS = ("pairs_dir", "llm_loss_weight", "pairs_per_example", "confidence_weighting",
                 "pair_loss", "pair_margin", "pair_selection", "pairs_top_k", "paper_uncertainty", "gate_reference")
# What the LLM must beat for a pair to weigh (gate.pair_weight): a coin flip, or the backbone's own
# accuracy per region, refitted on the validation split after each epoch (student_reference.py).
GATE_REFERENCES = ("chance", "student")
# How a split is evaluated: its rows (positives and their sampled negatives), or each positive
# against every item the user has no earlier row for (training/full_ranking.py).
PROTOCOLS = ("sampled", "full_ranking")
FULL_RANKING_SUFFIX = "_full_ranking"  # metrics.json key of a full-ranking block: "test_full_ranking"
RANKING_CHUNK_PAIRS = 1 << 16  # pairs per forward pass by default (BUILD_NOTES.md, "Full-ranking evaluation")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting that changes what a run learns (the run's train_config.json)."""

    data_dir: str = option(help="Prepared dataset directory (sllmr-prepare).")
    model_dir: str = option(help="Output directory: checkpoints, logs, metrics.json.")
    backbone: str = option("dnn", "CTR backbone.", choices=BACKBONES.names)
    method: str = option("base", "How the LLM pairs enter the loss (training/methods.py).",
                         choices=methods_lib.method_names)
    pairs_dir: str | None = option(None, "LLM pairs (sllmr-score); needed by every method but base.")
    seed: int = option(0, "Seed of initialisation, shuffling and the pair join.")
    epochs: int = option(20, "Maximum epochs.")
    patience: int = option(2, "Epochs without a better validation AUC before stopping.")
    batch_size: int = option(128, "Training batch size.")
    learning_rate: float = option(1e-3, "Adam learning rate.")
    llm_loss_weight: float = option(0.1, "lambda: weight of the LLM loss term.")
    pairs_per_example: float = option(1.0, "LLM pairs drawn per training example: a batch of B gets "
                                      "ceil(x * B) pairs, drawn uniformly from all pairs.")
    confidence_weighting: bool = option(False, "Weight each pairwise loss by the LLM's confidence.")
    pair_loss: str = option(methods_lib.SOFTPLUS, "Pairwise loss on d = s_a - s_b: softplus(-d), or the "
                            "paper's hinge max(0, pair_margin - d).", choices=methods_lib.PAIR_LOSSES)
    pair_margin: float = option(1.0, "m of the hinge pair loss, in logits (the paper gives none; 1 asks the "
                                "preferred item's odds to be e times the other's).")
    pair_selection: str = option(methods_lib.UNIFORM, "Pairs the join draws from: all (uniform), or per "
                                 "user the pairs_top_k the LLM is most confident about (top_k, the paper's).",
                                 choices=methods_lib.PAIR_SELECTIONS)
    pairs_top_k: int = option(10, "K of --pair_selection=top_k: pairs kept per user (the paper gives none).")
    paper_uncertainty: str = option(methods_lib.MAX_PROB, "sllmr_paper's uncertainty of the backbone on (u, i): "
                                    "1 - max(p, 1 - p), or the binary entropy of p.",
                                    choices=methods_lib.PAPER_UNCERTAINTIES)
    gate_reference: str = option("chance", "What sllmr's gate weighs a pair by: what the LLM adds over a coin "
                                 "flip (chance), or the backbone's accuracy in the pair's region on the "
                                 "validation split, refitted after each epoch (student; BUILD_NOTES.md, the gate).",
                                 choices=GATE_REFERENCES)
    shuffle_buffer: int = option(10_000, "Examples in the shuffle buffer.")
    embedding_dim: int = option(32, "Embedding size of every feature.")
    mlp_units: tuple[int, ...] = option((200, 80), "Hidden units of the deep tower.")
    dropout: float = option(0.1, "Dropout rate of the deep tower.")
    l2: float = option(0.0, "L2 penalty on embeddings and kernels.")
    eval_batch_size: int = option(4096, "Batch size of validation and test.")
    num_bootstrap: int = option(200, "Bootstrap resamples of the AUC intervals.")
    strategy: str = option("default", "tf.distribute strategy: default (one device), mirrored (this machine's "
                           "devices), multi_worker (the cluster in $TF_CONFIG; batch_size is per replica).",
                           choices=STRATEGIES)
    knowledge_dir: str | None = option(None, "kar: where the items' MiniLM vectors are kept (embedded there "
                                       "on the first run; default <data_dir>/knowledge).")
    full_ranking_eval: bool = option(False, "After training, also rank every test positive against every "
                                     "item the user has no train or valid row for (metrics.json "
                                     "test_full_ranking; slow on large catalogues).")

    def validate(self) -> methods_lib.Method:
        """The run's method; raises ConfigError naming the first invalid setting."""
        method = methods_lib.get_method(self.method)
        if self.backbone not in BACKBONES.names():
            raise ConfigError(f"unknown backbone {self.backbone!r}; known: {', '.join(BACKBONES.names())}")
        if method.uses_pairs and not self.pairs_dir:
            raise ConfigError(f"method {self.method!r} needs --pairs_dir (LLM pairs from sllmr-score)")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        for name in ("epochs", "patience", "batch_size", "eval_batch_size", "num_bootstrap"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("llm_loss_weight", "l2"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if method.uses_pairs and not self.pairs_per_example > 0:
            raise ConfigError(f"pairs_per_example must be > 0, got {self.pairs_per_example}")
        for name, allowed in (("pair_loss", methods_lib.PAIR_LOSSES), ("pair_selection", methods_lib.PAIR_SELECTIONS),
                              ("paper_uncertainty", methods_lib.PAPER_UNCERTAINTIES),
                              ("gate_reference", GATE_REFERENCES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"unknown {name} {getattr(self, name)!r}; known: {', '.join(allowed)}")
        if self.pair_margin < 0:
            raise ConfigError(f"pair_margin must be >= 0, got {self.pair_margin}")
        if self.pairs_top_k < 1:
            raise ConfigError(f"pairs_top_k must be >= 1, got {self.pairs_top_k}")
        self.backbone_config()  # its own checks
        return method

    def without_pair_settings(self) -> "TrainConfig":
        """The same run with every pair setting at its default (what a base run is)."""
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.name in PAIR_SETTINGS}
        return dataclasses.replace(self, **defaults)

    def backbone_config(self) -> BackboneConfig:
        knowledge = methods_lib.get_method(self.method).knowledge
        return BackboneConfig(embedding_dim=self.embedding_dim, mlp_units=tuple(self.mlp_units),
                              dropout=self.dropout, l2=self.l2, knowledge_dim=EMBEDDING_DIM if knowledge else 0)

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "mlp_units": list(self.mlp_units)}


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What `sllmr-eval` measures on a finished run."""

    model_dir: str = option(help="A finished sllmr-train model_dir.")
    data_dir: str = option(help="Prepared dataset directory to evaluate on.")
    split: str = option("test", "Split to evaluate.", choices=SPLITS)
    batch_size: int = option(4096, "Prediction batch size.")
    num_bootstrap: int = option(200, "Bootstrap resamples of the AUC intervals.")
    seed: int = option(0, "Seed of the bootstrap.")
    protocol: str = option("sampled", "sampled: AUC over the split's rows (positives and their sampled "
                           "negatives); full_ranking: each positive against every item the user has no "
                           "earlier-split row for, written as <split>_full_ranking.", choices=PROTOCOLS)
    ranking_chunk_pairs: int = option(RANKING_CHUNK_PAIRS, "full_ranking: (user, item) pairs scored in one "
                                      "forward pass (a chunk holds this // items users, at least one).")

    @property
    def metrics_key(self) -> str:
        """Where the block goes in metrics.json: the split, or <split>_full_ranking."""
        return self.split + (FULL_RANKING_SUFFIX if self.protocol == "full_ranking" else "")
