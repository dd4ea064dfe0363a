"""Benchmark: our backbones against DeepCTR 0.9.4 on the same prepared data.

    pip install --no-deps deepctr==0.9.4        # the `bench` extra; never a package dependency
    python -m sllmr_tf.bench.backbones_vs_deepctr --data_dir=DIR [--batch_size=1024] [--epochs=4] [--seeds=0,1,2]

Both sides train the same architecture (embedding 32 shared between a target
and its history, history mean-pooled for all but DIN, MLP [200, 80], dropout
0.1, no L2, Adam 1e-3, BCE) with Keras `fit` on the same in-memory full batches
of the prepared train split, in the same process, their epochs alternating so
that a change in machine load hits all of them alike. (DeepCTR's AutoInt and
DCN also add a first-order linear term that ours, like the papers, lack.)

Printed per backbone and per our compute precision (float32, and
mixed_bfloat16, which uses the bfloat16 units of recent CPUs and GPUs; DeepCTR
0.9.4 runs in float32 except DIN under --deepctr_dtype_policy): training
examples/s from the median wall time of one training step in the epochs after
the first (which pays for tracing; a step's time runs from one batch end to
the next, so a stall of the machine inflates a few steps, not the figure), the
ratio ours / DeepCTR (goal >= 1.5), the same ratio in examples per second of
process CPU time (median epoch; robust to other processes on the machine),
and both test AUCs after the last epoch; each a median or mean over one race
per seed, with our AUC minus DeepCTR's paired by seed and its 95% t-interval
(one seed's AUC difference is within seed-to-seed noise of about 0.005).
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, Mapping, Sequence

import numpy as np
from absl import app, flags

import tensorflow as tf

from sllmr_tf import features
from sllmr_tf.bench.timing import StepTimes
from sllmr_tf.data import dataset_dir, pipeline
from sllmr_tf.experiments import results
from sllmr_tf.models.build import build_backbone
from sllmr_tf.models.config import BackboneConfig

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "A prepared dataset (sllmr-prepare).", required=True)
flags.DEFINE_integer("batch_size", 1024, "Training batch size, the same for both.")
flags.DEFINE_integer("epochs", 4, "Training epochs; throughput excludes the first.")
flags.DEFINE_list("backbones", ["deepfm", "din", "autoint", "dcnv2", "xdeepfm"], "Backbones to compare.")
flags.DEFINE_list("dtype_policies", ["float32", "mixed_bfloat16"],
                  "Our compute precisions to time (DeepCTR runs in float32).")
flags.DEFINE_string("deepctr_dtype_policy", "float32",
                    "DeepCTR's Keras dtype policy (0.9.4 runs mixed_bfloat16 only for DIN).")
flags.DEFINE_integer("steps_per_execution", 1,
                     "Training steps per tf.function call, for both sides (Keras compile option).")
flags.DEFINE_list("seeds", ["0", "1", "2"],
                  "One race per seed; a seed sets initialisation and the one-off shuffle of train.")

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
            rename: Mapping[str, str] = {}, full_only: bool = False) -> tf.data.Dataset:
    """(inputs, label) batches; for DeepCTR scalar features become (batch, 1) columns.

    `full_only` drops a last partial batch: a second batch shape makes Keras
    retrace the training step, and a third call relaxes the shapes and traces again.
    """
    inputs = {rename.get(k, k): (v[:, None] if deepctr and v.ndim == 1 else v)
              for k, v in arrays.items() if k != "label"}
    data = tf.data.Dataset.from_tensor_slices((inputs, arrays["label"][:, None]))
    return data.batch(batch_size, drop_remainder=full_only).cache()


def our_model(name: str, vocab_sizes: Mapping[str, int], dtype_policy: str) -> tf.keras.Model:
    model = build_backbone(name, vocab_sizes, dataclasses.replace(CONFIG, dtype_policy=dtype_policy))
    model.compile(optimizer=tf.keras.optimizers.Adam(LEARNING_RATE),
                  loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
                  steps_per_execution=FLAGS.steps_per_execution)
    return model


def deepctr_model(name: str, vocab_sizes: Mapping[str, int], seed: int) -> tf.keras.Model:
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
                  l2_reg_embedding=0.0, seed=seed)
    linear = dict(l2_reg_linear=0.0)
    builders: dict[str, Callable[[], tf.keras.Model]] = {
        "deepfm": lambda: dm.DeepFM(columns, columns, **common, **linear),
        "din": lambda: dm.DIN(columns, ["item_id", "item_category"], **common,
                              att_hidden_size=CONFIG.din_attention_units,
                              att_activation=CONFIG.din_attention_activation),
        "autoint": lambda: dm.AutoInt(columns, columns, **common, **linear,
                                      att_layer_num=CONFIG.autoint_layers,
                                      att_embedding_size=(CONFIG.autoint_attention_size
                                                          // CONFIG.autoint_heads),
                                      att_head_num=CONFIG.autoint_heads, att_res=CONFIG.autoint_residual),
        "dcnv2": lambda: dm.DCN(columns, columns, **common, **linear, cross_num=CONFIG.dcnv2_cross_layers,
                                cross_parameterization="matrix", l2_reg_cross=0.0),
        "xdeepfm": lambda: dm.xDeepFM(columns, columns, **common, **linear,
                                      cin_layer_size=CONFIG.xdeepfm_cin_units,
                                      cin_split_half=CONFIG.xdeepfm_cin_split_half,
                                      cin_activation="linear"),
    }
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(FLAGS.deepctr_dtype_policy)
    try:
        model = builders[name]()
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    model.compile(optimizer=tf.keras.optimizers.Adam(LEARNING_RATE),
                  loss=tf.keras.losses.BinaryCrossentropy(from_logits=False),
                  steps_per_execution=FLAGS.steps_per_execution)
    return model


@dataclasses.dataclass
class Contender:
    """One model in a race: its data, and the wall and CPU seconds of its epochs and steps."""

    label: str
    model: tf.keras.Model
    train: tf.data.Dataset
    test: tf.data.Dataset
    from_logits: bool
    seconds: list[float] = dataclasses.field(default_factory=list)
    cpu_seconds: list[float] = dataclasses.field(default_factory=list)
    step_seconds: list[list[float]] = dataclasses.field(default_factory=list)

    def train_one_epoch(self) -> None:
        steps = StepTimes()
        started, cpu_started = time.perf_counter(), time.process_time()
        self.model.fit(self.train, epochs=1, verbose=0, callbacks=[steps])
        self.seconds.append(time.perf_counter() - started)
        self.cpu_seconds.append(time.process_time() - cpu_started)
        self.step_seconds.append(steps.seconds)

    def examples_per_second(self, examples: int) -> float:
        """From the median step of the epochs after the first (which pays for tracing)."""
        examples_per_step = examples / len(self.step_seconds[-1])
        return examples_per_step / float(np.median(np.concatenate(self.step_seconds[1:])))

    def examples_per_cpu_second(self, examples: int) -> float:
        """Examples per second of this process's CPU time (all its threads), median epoch."""
        return examples / float(np.median(self.cpu_seconds[1:]))

    def results(self, examples: int) -> tuple[float, float, float]:
        return self.examples_per_second(examples), self.examples_per_cpu_second(examples), self.test_auc()

    def test_auc(self) -> float:
        auc = tf.keras.metrics.AUC(from_logits=self.from_logits)
        for x, y in self.test:
            auc.update_state(y, self.model(x, training=False))
        return float(auc.result())


def race(contenders: list[Contender], epochs: int) -> None:
    """Epochs of the contenders alternate, so a change in machine load hits all of them alike."""
    for _ in range(epochs):
        for contender in contenders:
            contender.train_one_epoch()


@dataclasses.dataclass
class Result:
    """One contender's figures over the seeds: per-seed throughput and test AUC."""

    rates: list[float] = dataclasses.field(default_factory=list)
    cpu_rates: list[float] = dataclasses.field(default_factory=list)
    aucs: list[float] = dataclasses.field(default_factory=list)

    def add(self, contender: Contender, examples: int) -> None:
        rate, cpu_rate, auc = contender.results(examples)
        self.rates.append(rate)
        self.cpu_rates.append(cpu_rate)
        self.aucs.append(auc)


def race_backbone(name: str, seed: int, train: dict, test: dict,
                  vocab_sizes: Mapping[str, int]) -> tuple[Contender, list[Contender]]:
    """One seed's race on backbone `name`: (DeepCTR, ours in each precision), trained."""
    rename = DEEPCTR_DIN_HISTORY if name == "din" else {}
    order = np.random.default_rng(seed).permutation(len(train["label"]))
    train = {k: v[order] for k, v in train.items()}
    tf.keras.utils.set_random_seed(seed)
    theirs = Contender(FLAGS.deepctr_dtype_policy, deepctr_model(name, vocab_sizes, seed),
                       batches(train, FLAGS.batch_size, True, rename, full_only=True),
                       batches(test, 8192, True, rename), from_logits=False)
    ours = []
    for policy in FLAGS.dtype_policies:
        tf.keras.utils.set_random_seed(seed)
        ours.append(Contender(policy, our_model(name, vocab_sizes, policy),
                              batches(train, FLAGS.batch_size, full_only=True),
                              batches(test, 8192), from_logits=True))
    race([theirs] + ours, FLAGS.epochs)
    for contender in ours:
        print(f"{name} seed {seed}: ours ({contender.label}) epochs {_seconds(contender)}; "
              f"DeepCTR ({theirs.label}) epochs {_seconds(theirs)}", flush=True)
    return theirs, ours


def main(argv: Sequence[str]) -> None:
    if FLAGS.epochs < 2:
        raise app.UsageError("--epochs must be >= 2: the first epoch is excluded from timing")
    seeds = [int(s) for s in FLAGS.seeds]
    vocab_sizes = features.vocab_sizes(dataset_dir.DatasetDir(FLAGS.data_dir).stats)
    train, test = load_split(FLAGS.data_dir, "train"), load_split(FLAGS.data_dir, "test")
    n = len(train["label"]) // FLAGS.batch_size * FLAGS.batch_size  # examples per epoch in full batches
    print(f"train {n:,} examples, test {len(test['label']):,}; batch {FLAGS.batch_size}, "
          f"{FLAGS.epochs} epochs (first untimed); seeds {seeds}; steps per execution "
          f"{FLAGS.steps_per_execution}; DeepCTR precision {FLAGS.deepctr_dtype_policy}; "
          f"device {'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}", flush=True)
    table = []
    for name in FLAGS.backbones:
        theirs, ours = Result(), {policy: Result() for policy in FLAGS.dtype_policies}
        for seed in seeds:
            their_contender, our_contenders = race_backbone(name, seed, train, test, vocab_sizes)
            theirs.add(their_contender, n)
            for contender in our_contenders:
                ours[contender.label].add(contender, n)
        table += [(name, policy, result, theirs) for policy, result in ours.items()]
    print(f"\nExamples/s: median over {len(seeds)} seeds of each seed's median step (wall) and of its "
          "median epoch per CPU-second; AUC: mean ± sd over seeds, and our AUC minus DeepCTR's "
          "paired by seed with a 95% t-interval.\n")
    print("| backbone | our precision | ours ex/s | DeepCTR ex/s | ratio (wall) | ratio (CPU time) "
          "| our test AUC | DeepCTR test AUC | AUC difference [95% CI] |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, policy, result, their in table:
        rate, their_rate = np.median(result.rates), np.median(their.rates)
        cpu_ratio = np.median(result.cpu_rates) / np.median(their.cpu_rates)
        diff, low, high = results.mean_with_t_interval(np.subtract(result.aucs, their.aucs))
        print(f"| {name} | {policy} | {rate:,.0f} | {their_rate:,.0f} | {rate / their_rate:.2f} | "
              f"{cpu_ratio:.2f} | {_mean_sd(result.aucs)} | {_mean_sd(their.aucs)} | "
              f"{diff:+.4f} [{low:+.4f}, {high:+.4f}] |")


def _mean_sd(values: Sequence[float]) -> str:
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1) if len(values) > 1 else math.nan:.4f}"


def _seconds(contender: Contender) -> str:
    return " ".join(f"{wall:.2f}s/{cpu:.2f}cpu-s"
                    for wall, cpu in zip(contender.seconds, contender.cpu_seconds))


if __name__ == "__main__":
    app.run(main)
