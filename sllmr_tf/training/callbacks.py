"""Callbacks of a training run that Keras does not provide as needed.

Keras's EarlyStopping keeps its best weights and counters in memory, so a run
killed and resumed by BackupAndRestore would forget them; `EarlyStoppingOnAuc`
keeps both on disk. `GateHistograms` writes what the scalar logs cannot show:
the distribution of the pair weights per segment on a fixed sample of joined batches.
"""
from __future__ import annotations

import collections
import time

import numpy as np
import scipy.stats

import tensorflow as tf

from sllmr_tf import fileio, segments
from sllmr_tf.training import artifacts
from sllmr_tf.training.join import PAIRS_KEY


class EarlyStoppingOnAuc(tf.keras.callbacks.Callback):
    """Stop when `monitor` has not improved for `patience` epochs; end on the best weights.

    The state is read from model_dir and written, with the best weights, to `write_dir`
    (default model_dir): a multi-worker run's other workers start from the chief's state and
    write their own copies elsewhere (training/distribution.py); every worker sees the same
    validation AUC, so all take the same decisions."""

    def __init__(self, model_dir: str, patience: int, monitor: str = "val_auc", min_delta: float = 0.0,
                 log=print, write_dir: str | None = None):
        super().__init__()
        self.model_dir, self.patience, self.monitor, self.min_delta = model_dir, patience, monitor, min_delta
        self.write_dir = write_dir or model_dir
        self.log = log
        self.state = {"best": None, "best_epoch": None, "wait": 0, "epochs_run": 0, "history": []}

    def on_train_begin(self, logs=None):
        saved = fileio.read_json(artifacts.path(self.model_dir, artifacts.EARLY_STOPPING))
        if saved is not None:
            self.state = saved

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise KeyError(f"early stopping monitors {self.monitor!r}, which the logs lack: "
                           f"{sorted(logs or {})}")
        # A run killed after this state was written but before the epoch's backup redoes the
        # epoch: its value replaces the one recorded, so no epoch counts twice.
        history = self.state.get("history", [])[:epoch] + [float(value)]
        best, best_epoch, wait = None, None, 0
        for number, auc in enumerate(history, start=1):
            if best is None or auc > best + self.min_delta:
                best, best_epoch, wait = auc, number, 0
            else:
                wait += 1
        self.state = {"best": best, "best_epoch": best_epoch, "wait": wait, "epochs_run": epoch + 1,
                      "history": history}
        if best_epoch == epoch + 1:
            self.model.save_weights(artifacts.path(self.write_dir, artifacts.BEST_WEIGHTS))
        elif wait >= self.patience:
            self.log(f"early stopping: {self.monitor} has not improved on {best:.4f} "
                     f"(epoch {best_epoch}) for {self.patience} epochs")
            self.model.stop_training = True
        fileio.write_json(self._state_path, self.state)

    def on_train_end(self, logs=None):
        if self.state["best_epoch"] is not None:
            self.model.load_weights(artifacts.path(self.write_dir, artifacts.BEST_WEIGHTS)).expect_partial()
            self.log(f"restored the best epoch {self.state['best_epoch']} "
                     f"({self.monitor} {self.state['best']:.4f})")

    @property
    def _state_path(self) -> str:
        return artifacts.path(self.write_dir, artifacts.EARLY_STOPPING)


class EpochProgress(tf.keras.callbacks.Callback):
    """One short line per epoch (loss, validation AUC, seconds), for callers that run Keras
    silently (sllmr-experiment trains many runs, and a bar per run would bury the results)."""

    def __init__(self, log=print, indent: str = "    "):
        super().__init__()
        self.log, self.indent, self._started = log, indent, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [f"{name} {logs[name]:.4f}" for name in ("loss", "val_auc") if name in logs]
        self.log(f"{self.indent}epoch {epoch + 1}: {', '.join(parts)} ({time.time() - self._started:.0f} s)")


class ResumeNotice(tf.keras.callbacks.Callback):
    """Says so when BackupAndRestore has moved the start past epoch 1."""

    def __init__(self, log=print):
        super().__init__()
        self.log, self._first = log, True

    def on_epoch_begin(self, epoch, logs=None):
        if self._first and epoch > 0:
            self.log(f"resumed from the backup checkpoint at epoch {epoch + 1}")
        self._first = False


class GateHistograms(tf.keras.callbacks.Callback):
    """Per epoch, the pair weights on a fixed sample of joined training batches, per segment.

    Writes histograms and means of the weight the pairwise loss applies
    (weight/<segment>) and, for the learned gate, of alpha (alpha/<segment>),
    and, where the pairs carry the synthetic world's truth, the Spearman
    correlation of the weight with the true probability that the LLM's order is right;
    for the paper's trained gate also its w and b (paper_gate/<name>).
    """

    def __init__(self, log_dir: str, batches: list):
        super().__init__()
        self.writer = tf.summary.create_file_writer(fileio.join(log_dir, "gate"))
        self.batches = batches

    def on_epoch_end(self, epoch, logs=None):
        sample = pair_weight_sample(self.model, self.batches)
        if sample["weight"].size == 0:
            return
        masks = segments.pair_segments(sample["is_cold_user"], sample["a_is_longtail"], sample["b_is_longtail"])
        with self.writer.as_default(step=epoch):
            for quantity in ("weight", "alpha"):
                if quantity not in sample:
                    continue
                for name, mask in masks.items():
                    if mask.any():
                        tf.summary.histogram(f"{quantity}/{name}", sample[quantity][mask])
                        tf.summary.scalar(f"{quantity}_mean/{name}", float(sample[quantity][mask].mean()))
            truth = sample["true_correct_prob"] >= 0
            if truth.sum() > 2 and np.ptp(sample["weight"][truth]) > 0:
                rho = scipy.stats.spearmanr(sample["weight"][truth], sample["true_correct_prob"][truth])[0]
                tf.summary.scalar("weight_spearman_true_correct_prob", float(rho))
            if self.model.paper_gate is not None:
                for name, value in self.model.paper_gate.parameters().items():
                    tf.summary.scalar(f"paper_gate/{name}", value)
        self.writer.flush()


def pair_weight_sample(model, batches: list) -> dict[str, np.ndarray]:
    """Each joined pair's weight (and alpha, with a gate) under the current model, with its
    user's and items' segment tags, the LLM outcome and the truth."""
    parts: dict[str, list] = collections.defaultdict(list)
    for x, y in batches:
        terms = model.loss_terms(x, y, training=False)
        pairs = x[PAIRS_KEY]
        parts["weight"].append(terms.weight.numpy())
        if terms.alpha is not None:
            parts["alpha"].append(terms.alpha.numpy())
        for name, value in (("is_cold_user", pairs["is_cold_user"]), ("user_train_positives", pairs["user_train_positives"]),
                            ("a_is_longtail", pairs["a"]["is_longtail_item"]),
                            ("b_is_longtail", pairs["b"]["is_longtail_item"]),
                            ("true_correct_prob", pairs["true_correct_prob"]), ("outcome", pairs["outcome"])):
            parts[name].append(value.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()} if parts else {"weight": np.zeros(0)}
