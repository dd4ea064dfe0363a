"""Benchmark: our backbones against DeepCTR 0.9.4 on the same prepared data.

    pip install --no-deps deepctr==0.9.4        # the `bench` extra; never a package dependency
    python -m sllmr_tf.bench.backbones_vs_deepctr --data_dir=DIR [--batch_size=1024] [--epochs=3]

Both sides train the same architecture (embedding 32 shared between a target
and its history, MLP [200, 80], dropout 0.1, no L2, Adam 1e-3, BCE) on the same
in-memory batches of the prepared train split, in the same process. Training
examples/s is measured over every epoch but the first (which pays for tracing);
test AUC is measured after the last epoch. Printed per backbone and per our
compute precision (float32, and mixed_bfloat16 which uses the bfloat16 units of
recent CPUs and GPUs): ours, DeepCTR's (float32), the ratio (goal >= 1.5), and
both test AUCs. Other processes on the machine skew the numbers: run it alone.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Mapping, Sequence

import numpy as np
from absl import app, flags

import sllmr_tf  # noqa: F401  (selects tf_keras before TensorFlow and DeepCTR load)
import tensorflow as tf

from sllmr_tf import features
from sllmr_tf.data import dataset_dir, pipeline
from sllmr_tf.models import BackboneConfig, build_backbone

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "A prepared dataset (sllmr-prepare).", required=True)
flags.DEFINE_integer("batch_size", 1024, "Training batch size, the same for both.")
flags.DEFINE_integer("epochs", 3, "Training epochs; throughput excludes the first.")
flags.DEFINE_list("backbones", ["deepfm", "din", "autoint", "dcnv2", "xdeepfm"], "Backbones to compare.")
flags.DEFINE_list("dtype_policies", ["float32", "mixed_bfloat16"],
                  "Our compute precisions to time (DeepCTR runs in float32).")
flags.DEFINE_integer("seed", 0, "Seed of initialisation and of the one-off shuffle of train.")

CONFIG = BackboneConfig()
LEARNING_RATE = 1e-3
# DIN in DeepCTR names a target's history "hist_<target>".
DEEPCTR_DIN_HISTORY = {"hist_item_ids": "hist_item_id", "hist_item_categories": "hist_item_category"}


def load_split(data_dir: str, split: str) -> dict[str, np.ndarray]:
    """The model features and labels of a split, in memory."""
    spec = features.model_features() + (features.feature("label"),)
    parts = list(pipeline.make_dataset(data_dir, split, 65536, feature_set=spec).as_numpy_iterator())
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def batches(arrays: Mapping[str, np.ndarray], batch_size: int, deepctr: bool = False,
            rename: Mapping[str, str] = {}) -> tf.data.Dataset:
    """(inputs, label) batches; for DeepCTR scalar features become (batch, 1) columns."""
    inputs = {rename.get(k, k): (v[:, None] if deepctr and v.ndim == 1 else v)
              for k, v in arrays.items() if k != "label"}
    data = tf.data.Dataset.from_tensor_slices((inputs, arrays["label"][:, None]))
    return data.batch(batch_size).cache().prefetch(tf.data.AUTOTUNE)


def our_model(name: str, vocab_sizes: Mapping[str, int], dtype_policy: str) -> tf.keras.Model:
    model = build_backbone(name, vocab_sizes, dataclasses.replace(CONFIG, dtype_policy=dtype_policy))
    model.compile(optimizer=tf.keras.optimizers.Adam(LEARNING_RATE),
                  loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
    return model


def deepctr_model(name: str, vocab_sizes: Mapping[str, int]) -> tf.keras.Model:
    """The same architecture written with DeepCTR's feature columns and model functions."""
    import deepctr.models as dm
    from deepctr.feature_column import SparseFeat, VarLenSparseFeat

    dim, rename = CONFIG.embedding_dim, DEEPCTR_DIN_HISTORY if name == "din" else {}
    columns = []
    for f in features.model_features():
        sparse = SparseFeat(rename.get(f.name, f.name), vocab_sizes[f.vocabulary], embedding_dim=dim,
                            dtype="int64", embedding_name=f.vocabulary)
        columns.append(VarLenSparseFeat(sparse, maxlen=f.shape[0], combiner="mean") if f.shape else sparse)
    common = dict(dnn_hidden_units=CONFIG.mlp_units, dnn_dropout=CONFIG.dropout,
                  l2_reg_embedding=0.0, seed=FLAGS.seed)
    linear = dict(l2_reg_linear=0.0)
    builders: dict[str, Callable[[], tf.keras.Model]] = {
        "deepfm": lambda: dm.DeepFM(columns, columns, **common, **linear),
        "din": lambda: dm.DIN(columns, ["item_id", "item_category"], **common,
                              att_hidden_size=CONFIG.din_attention_units,
                              att_activation=CONFIG.din_attention_activation),
        "autoint": lambda: dm.AutoInt(columns, columns, **common, **linear,
                                      att_layer_num=CONFIG.autoint_layers,
                                      att_embedding_size=CONFIG.autoint_attention_size // CONFIG.autoint_heads,
                                      att_head_num=CONFIG.autoint_heads, att_res=CONFIG.autoint_residual),
        "dcnv2": lambda: dm.DCN(columns, columns, **common, **linear, cross_num=CONFIG.dcnv2_cross_layers,
                                cross_parameterization="matrix", l2_reg_cross=0.0),
        "xdeepfm": lambda: dm.xDeepFM(columns, columns, **common, **linear,
                                      cin_layer_size=CONFIG.xdeepfm_cin_units,
                                      cin_split_half=CONFIG.xdeepfm_cin_split_half,
                                      cin_activation="linear"),
    }
    model = builders[name]()
    model.compile(optimizer=tf.keras.optimizers.Adam(LEARNING_RATE),
                  loss=tf.keras.losses.BinaryCrossentropy(from_logits=False))
    return model


class EpochTimer(tf.keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def train_and_test(model: tf.keras.Model, train: tf.data.Dataset, test: tf.data.Dataset,
                   train_examples: int, from_logits: bool) -> tuple[float, float]:
    """(training examples/s after the first epoch, test AUC)."""
    timer = EpochTimer()
    model.fit(train, epochs=FLAGS.epochs, callbacks=[timer], verbose=0)
    throughput = train_examples * (FLAGS.epochs - 1) / sum(timer.seconds[1:])
    auc = tf.keras.metrics.AUC(from_logits=from_logits)
    for x, y in test:
        auc.update_state(y, model(x, training=False))
    return throughput, float(auc.result())


def main(argv: Sequence[str]) -> None:
    if FLAGS.epochs < 2:
        raise app.UsageError("--epochs must be >= 2: the first epoch is excluded from timing")
    vocab_sizes = features.vocab_sizes(dataset_dir.DatasetDir(FLAGS.data_dir).stats)
    train, test = load_split(FLAGS.data_dir, "train"), load_split(FLAGS.data_dir, "test")
    order = np.random.default_rng(FLAGS.seed).permutation(len(train["label"]))
    train = {k: v[order] for k, v in train.items()}
    n = len(train["label"])
    print(f"train {n:,} examples, test {len(test['label']):,}; batch {FLAGS.batch_size}, "
          f"{FLAGS.epochs} epochs (first untimed); "
          f"device {'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}", flush=True)
    rows = []
    for name in FLAGS.backbones:
        rename = DEEPCTR_DIN_HISTORY if name == "din" else {}
        tf.keras.utils.set_random_seed(FLAGS.seed)
        theirs = train_and_test(deepctr_model(name, vocab_sizes), batches(train, FLAGS.batch_size, True, rename),
                                batches(test, 8192, True, rename), n, from_logits=False)
        print(f"{name}: DeepCTR {theirs[0]:,.0f}/s AUC {theirs[1]:.4f}", flush=True)
        for policy in FLAGS.dtype_policies:
            tf.keras.utils.set_random_seed(FLAGS.seed)
            ours = train_and_test(our_model(name, vocab_sizes, policy), batches(train, FLAGS.batch_size),
                                  batches(test, 8192), n, from_logits=True)
            print(f"{name}: ours ({policy}) {ours[0]:,.0f}/s AUC {ours[1]:.4f}", flush=True)
            rows.append((name, policy, ours, theirs))
    print("\n| backbone | our precision | ours ex/s | DeepCTR ex/s | ratio | our test AUC | DeepCTR test AUC |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, policy, (our_rate, our_auc), (their_rate, their_auc) in rows:
        print(f"| {name} | {policy} | {our_rate:,.0f} | {their_rate:,.0f} | {our_rate / their_rate:.2f} | "
              f"{our_auc:.4f} | {their_auc:.4f} |")


if __name__ == "__main__":
    app.run(main)
