"""One training run, start to finish: what sllmr-train does.

data_dir (+ pairs_dir) -> TrainingModel(backbone, method) -> fit with
BackupAndRestore (a killed run resumes at its last finished epoch), early
stopping on validation AUC that survives restarts, TensorBoard -> the best
epoch's backbone saved alone -> valid and test metrics with intervals ->
metrics.json. Rerunning a finished run returns its metrics without training;
rerunning with other settings in the same model_dir is refused.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import time
from typing import Callable, Sequence

import sllmr_tf  # noqa: F401  (selects tf_keras before TensorFlow loads)
import tensorflow as tf

from sllmr_tf import features
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.models.config import BackboneConfig
from sllmr_tf.models.registry import backbone_names, build_backbone
from sllmr_tf.training import artifacts, callbacks as callbacks_lib, methods as methods_lib
from sllmr_tf.training.gate_report import gate_report
from sllmr_tf.training.inputs import interaction_batches, training_batches
from sllmr_tf.training.model import TrainingModel
from sllmr_tf.training.pairs_table import PairsTable, load_pairs_table
from sllmr_tf.training.prediction import evaluate_split

Log = Callable[[str], None]
GATE_SAMPLE_BATCHES = 8


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting that changes what a run learns (train_config.json)."""

    data_dir: str
    model_dir: str
    backbone: str = "dnn"
    method: str = "base"
    pairs_dir: str | None = None
    seed: int = 0
    epochs: int = 20
    patience: int = 2
    batch_size: int = 128
    learning_rate: float = 1e-3
    pair_weight: float = 0.1  # lambda
    gate_weight: float = 1.0  # mu
    pairs_per_example: float = 0.1  # 1.2x the backbone rows per step: within the <= 1.3x cost goal
    confidence_weighting: bool = False
    shuffle_buffer: int = 10_000
    embedding_dim: int = 32
    mlp_units: tuple[int, ...] = (200, 80)
    dropout: float = 0.1
    l2: float = 0.0
    eval_batch_size: int = 4096
    num_bootstrap: int = 200

    def validate(self) -> methods_lib.Method:
        method = methods_lib.get_method(self.method)
        if self.backbone not in backbone_names():
            raise ValueError(f"unknown backbone {self.backbone!r}; known: {', '.join(backbone_names())}")
        if method.uses_pairs and not self.pairs_dir:
            raise ValueError(f"method {self.method!r} needs --pairs_dir (LLM pairs from sllmr-score)")
        for name in ("epochs", "patience", "batch_size", "eval_batch_size", "num_bootstrap"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("pair_weight", "gate_weight", "l2"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if method.uses_pairs and not self.pairs_per_example > 0:
            raise ValueError(f"pairs_per_example must be > 0, got {self.pairs_per_example}")
        self.backbone_config()  # its own checks
        return method

    def backbone_config(self) -> BackboneConfig:
        return BackboneConfig(embedding_dim=self.embedding_dim, mlp_units=tuple(self.mlp_units),
                              dropout=self.dropout, l2=self.l2)

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "mlp_units": list(self.mlp_units)}


def train(config: TrainConfig, overwrite: bool = False, verbose: int = 2, log: Log = print,
          extra_callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> dict:
    """Train (or resume, or return the finished run's metrics); returns metrics.json's content."""
    method = config.validate()
    data = DatasetDir(config.data_dir)
    if _claim_model_dir(config, overwrite, log) == "finished":
        return artifacts.read_json(artifacts.path(config.model_dir, artifacts.METRICS))
    table = load_pairs_table(config.pairs_dir, data, method.keep_augmented) if method.uses_pairs else None
    if config.pairs_dir and not method.uses_pairs:
        log(f"method {config.method!r} ignores --pairs_dir")

    tf.keras.utils.set_random_seed(config.seed)
    vocab_sizes = features.vocab_sizes(data.stats)
    backbone = build_backbone(config.backbone, vocab_sizes, config.backbone_config())
    model = TrainingModel(backbone, method, pair_weight=config.pair_weight, gate_weight=config.gate_weight,
                          confidence_weighting=config.confidence_weighting)
    model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
    train_batches = training_batches(config.data_dir, config.batch_size, config.seed, table,
                                     config.pairs_per_example, config.shuffle_buffer)
    valid_batches = interaction_batches(config.data_dir, "valid", config.eval_batch_size)

    first_batch = next(iter(train_batches))
    model.loss_terms(*first_batch, training=False)  # builds backbone and gate before any restore
    # Every variable exists now; marked built, BackupAndRestore also builds the optimizer before
    # restoring, so Adam's slots come back with the weights on resume.
    model.built = True

    stopping = callbacks_lib.EarlyStoppingOnAuc(config.model_dir, config.patience, log=log)
    stopping.on_train_begin()
    log(_describe(config, data, table))
    started = time.time()
    if stopping.state.get("finished"):
        model.load_weights(artifacts.path(config.model_dir, artifacts.BEST_WEIGHTS)).expect_partial()
    else:
        model.fit(train_batches, validation_data=valid_batches, epochs=config.epochs, verbose=verbose,
                  callbacks=[stopping, *_standard_callbacks(config, model, train_batches, log),
                             *extra_callbacks])
        stopping.state["finished"] = True
        artifacts.write_json(artifacts.path(config.model_dir, artifacts.EARLY_STOPPING), stopping.state)

    artifacts.save_backbone(config.model_dir, config.backbone, config.backbone_config(), vocab_sizes, backbone)
    metrics = {
        "backbone": config.backbone, "method": config.method, "seed": config.seed,
        "data_dir": os.path.abspath(config.data_dir),
        "pairs_dir": os.path.abspath(config.pairs_dir) if method.uses_pairs else None,
        "training": {"epochs_run": stopping.state["epochs_run"], "best_epoch": stopping.state["best_epoch"],
                     "best_val_auc": stopping.state["best"], "num_pairs": len(table) if table else 0,
                     "seconds_this_session": round(time.time() - started, 1)},
    }
    for split in ("valid", "test"):
        metrics[split] = evaluate_split(backbone, config.data_dir, split, config.eval_batch_size,
                                        config.num_bootstrap, config.seed)
    if method.has_gate:
        metrics["gate"] = gate_report(model, config.data_dir, table)
    artifacts.write_json(artifacts.path(config.model_dir, artifacts.METRICS), metrics)
    log(metrics_summary(metrics))
    return metrics


def _standard_callbacks(config: TrainConfig, model: TrainingModel, train_batches: tf.data.Dataset,
                        log: Log) -> list:
    logs = artifacts.path(config.model_dir, artifacts.LOGS_DIR)
    out = [
        tf.keras.callbacks.BackupAndRestore(artifacts.path(config.model_dir, artifacts.BACKUP_DIR)),
        tf.keras.callbacks.TensorBoard(logs, write_graph=False, profile_batch=0),
        callbacks_lib.ResumeNotice(log),
    ]
    if model.method.weighting in (methods_lib.WEIGHT_GATE, methods_lib.WEIGHT_HEURISTIC):
        out.append(callbacks_lib.GateHistograms(logs, list(train_batches.take(GATE_SAMPLE_BATCHES))))
    return out


def _claim_model_dir(config: TrainConfig, overwrite: bool, log: Log) -> str:
    """'new', 'resume' or 'finished'; refuses a model_dir holding another run."""
    config_path = artifacts.path(config.model_dir, artifacts.TRAIN_CONFIG)
    saved = artifacts.read_json(config_path)
    if overwrite and saved is not None:
        shutil.rmtree(config.model_dir)
        saved = None
    if saved is None:
        if os.path.isdir(config.model_dir) and os.listdir(config.model_dir):
            raise FileExistsError(f"{config.model_dir}: not empty and not a training run; "
                                  "use another --model_dir")
        artifacts.write_json(config_path, config.to_json())
        return "new"
    # Where the run lives is not a setting: a run moved or linked elsewhere is the same run.
    differing = sorted(k for k, v in config.to_json().items() if k != "model_dir" and saved.get(k) != v)
    if differing:
        raise ValueError(f"{config.model_dir} holds a run with other settings ({', '.join(differing)}); "
                         "use another --model_dir or --overwrite")
    if os.path.exists(artifacts.path(config.model_dir, artifacts.METRICS)):
        log(f"{config.model_dir}: already trained (metrics.json exists); pass --overwrite to retrain")
        return "finished"
    return "resume"


def _describe(config: TrainConfig, data: DatasetDir, table: PairsTable | None) -> str:
    split = data.stats["splits"]["train"]
    pairs = f"{len(table):,} LLM pairs for {int((table.counts > 0).sum()):,} users" if table else "no LLM pairs"
    return (f"training {config.backbone} / {config.method} on {split['examples']:,} train examples, "
            f"{pairs}; model_dir {config.model_dir}")


def metrics_summary(metrics: dict) -> str:
    """A compact table of the metrics of each evaluated split."""
    lines = []
    for split in ("train", "valid", "test"):
        if split not in metrics:
            continue
        block = metrics[split]
        lines.append(f"{split}: segment            n      AUC [95% interval]        logloss")
        for name in ("overall", "cold_start_users", "longtail_items", "longtail_events"):
            seg = block[name]
            auc = "n/a" if seg["auc"] is None else (
                f"{seg['auc']:.4f} [{seg['auc_ci95'][0]:.4f}, {seg['auc_ci95'][1]:.4f}]"
                if seg["auc_ci95"] else f"{seg['auc']:.4f}")
            loss = "n/a" if seg["logloss"] is None else f"{seg['logloss']:.4f}"
            flag = "  (too small: < 200 events)" if seg["too_small"] else ""
            lines.append(f"  {name:<18} {seg['n']:>8,}  {auc:<26} {loss}{flag}")
        g = block["gauc"]
        if g["value"] is not None:
            lines.append(f"  {'gauc':<18} {g['n_users']:>8,}u {g['value']:.4f} "
                         f"[{g['ci95'][0]:.4f}, {g['ci95'][1]:.4f}]")
    if "gate" in metrics:
        lines.append(_gate_summary(metrics["gate"]))
    return "\n".join(lines)


def _gate_summary(gate: dict) -> str:
    means = ", ".join(f"{k} {v:.3f}" for k, v in gate["alpha_mean"].items() if v is not None)
    known = gate["agreement_auc"]
    line = (f"gate over {gate['pairs']:,} pairs: mean alpha {means}; AUC of alpha for the LLM's agreement "
            f"with train outcomes " + (f"{known['auc']:.3f} (n={known['n']:,})" if known["auc"] is not None else "n/a"))
    rho = gate["spearman_true_correct_prob"]
    return line + (f"; Spearman with the true correctness {rho:.3f}" if rho is not None else "")
