"""The training model: the pair join, how pairs are scored, the methods and the gate's isolation."""
from __future__ import annotations

import math

import numpy as np
import pytest

import sllmr_tf  # noqa: F401  (Keras 2 switch before TensorFlow loads)
import tensorflow as tf

from sllmr_tf import features
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.models.config import BackboneConfig
from sllmr_tf.models.backbones import BACKBONES
from sllmr_tf.models.build import build_backbone
from sllmr_tf.data import pairs_dir as pairs_dir_lib
from sllmr_tf.errors import ArtifactError, DataError
from sllmr_tf.training import methods
from sllmr_tf.training.gate import SIGNALS, fit_gate, gate_signals
from sllmr_tf.training.inputs import training_batches
from sllmr_tf.training.join import PAIRS_KEY
from sllmr_tf.training.paper_gate import SIGNALS as PAPER_SIGNALS
from sllmr_tf.training.model import TrainingModel, pair_loss
from sllmr_tf.training.pairs_table import (PairsTable, build_pairs_table, load_pairs_table, select_pairs,
                                           teacher_probabilities)

BATCH = 64
STEPS = 8
TINY = BackboneConfig(embedding_dim=4, mlp_units=(8,), dropout=0.0)


@pytest.fixture(scope="module")
def table(world) -> PairsTable:
    data_dir, pairs_dir = world
    return load_pairs_table(pairs_dir, DatasetDir(data_dir))


def batches(data_dir: str, table: PairsTable | None, pairs_per_example: float = 0.5, steps: int = STEPS):
    return list(training_batches(data_dir, BATCH, seed=3, table=table,
                                 pairs_per_example=pairs_per_example).take(steps))


def make_model(data_dir: str, method: str, dropout: float = 0.1, backbone_name: str = "dnn",
               table: PairsTable | None = None, backbone_config: BackboneConfig | None = None,
               **kwargs) -> TrainingModel:
    """A model whose initial weights depend only on the seed; methods with a gate get one fitted
    on `table`."""
    the_method = methods.get_method(method)
    gate = fit_gate(table.rows())[0] if the_method.has_gate else None
    tf.keras.utils.set_random_seed(7)
    vocab = features.vocab_sizes(DatasetDir(data_dir).stats)
    backbone = build_backbone(backbone_name, vocab, backbone_config or BackboneConfig(dropout=dropout))
    model = TrainingModel(backbone, the_method, gate=gate, **kwargs)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    return model


def silent_variables(model: TrainingModel, batch) -> list[str]:
    """The trainable variables one training-mode step gives no (or an all-zero) gradient."""
    with tf.GradientTape() as tape:
        terms = model.loss_terms(*batch, training=True)
    gradients = tape.gradient(terms.total, model.trainable_variables)
    return [v.name for g, v in zip(gradients, model.trainable_variables)
            if g is None or not np.any(tf.convert_to_tensor(g).numpy())]


def fit(model: TrainingModel, data: list) -> None:
    model.fit(tf.data.Dataset.from_generator(lambda: iter(data), output_signature=_signature(data[0])),
              epochs=1, verbose=0)


def _signature(batch):
    return tf.nest.map_structure(lambda t: tf.TensorSpec([None, *t.shape[1:]], t.dtype), batch)


def weights(layer) -> list[np.ndarray]:
    return [w.numpy() for w in layer.weights]


def as_numpy(batch) -> dict:
    return tf.nest.map_structure(lambda t: t.numpy(), batch)


# --- the join ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pairs_per_example", [0.25, 2.0])
def test_join_draws_ceil_x_b_pairs_per_batch_each_with_its_own_users_features(world, table, pairs_per_example):
    data_dir, _ = world
    for x, _ in batches(data_dir, table, pairs_per_example):
        x = as_numpy(x)
        pairs = x[PAIRS_KEY]
        assert len(pairs["user_id"]) == math.ceil(pairs_per_example * len(x["user_id"]))
        for name, values in table.users.items():
            np.testing.assert_array_equal(pairs["user"][name], values[pairs["user_id"]])


def test_the_user_features_of_a_pair_are_the_users_last_train_positives_most_recent_first(world, table):
    data_dir, _ = world
    category = DatasetDir(data_dir).item_lookup()["item_category"]
    for row in DatasetDir(data_dir).users()[:50]:
        recent = row["train_items"][::-1][:features.HISTORY_LENGTH]
        hist = table.users["hist_item_ids"][row["index"]]
        assert hist[:len(recent)].tolist() == recent and not hist[len(recent):].any()
        np.testing.assert_array_equal(table.users["hist_item_categories"][row["index"]][:len(recent)],
                                      category[recent])


def test_join_draws_pairs_uniformly_from_the_table_whatever_the_users_activity(world, table):
    """Cold-start users hold most of the pairs (targeted augmentation) and few train rows; the
    pairs they get follow their share of the pairs, not of the rows."""
    data_dir, _ = world
    drawn = np.concatenate([as_numpy(x[PAIRS_KEY])["user_id"] for x, _ in batches(data_dir, table, 2.0, steps=60)])
    cold = DatasetDir(data_dir).user_lookup()["is_cold_user"] > 0
    share_of_pairs = cold[table.columns["user_id"]].mean()
    rows = np.concatenate([as_numpy(x)["user_id"] for x, _ in batches(data_dir, None, steps=60)])
    print(f"cold-start users: {share_of_pairs:.3f} of the pairs, {cold[rows].mean():.3f} of the train rows, "
          f"{cold[drawn].mean():.3f} of the drawn pairs")
    assert abs(cold[drawn].mean() - share_of_pairs) < 0.03
    assert share_of_pairs > cold[rows].mean() + 0.2


def test_the_same_seed_and_batch_draw_the_same_pairs(world, table):
    data_dir, _ = world
    first, again = batches(data_dir, table, steps=3), batches(data_dir, table, steps=3)
    for (x1, _), (x2, _) in zip(first, again):
        np.testing.assert_array_equal(x1[PAIRS_KEY]["item_a"].numpy(), x2[PAIRS_KEY]["item_a"].numpy())


def test_top_k_keeps_each_users_k_most_confident_pairs(table):
    """Ties in confidence go to the larger margin, then to the scorer's order."""
    k = 5
    kept = select_pairs(table, methods.TOP_K, k)
    cols = table.columns
    expected = []
    for user in np.unique(cols["user_id"]):
        rows = np.flatnonzero(cols["user_id"] == user)
        expected += sorted(sorted(rows, key=lambda r: (-cols["confidence"][r], -cols["margin"][r], r))[:k])
    for name in ("user_id", "item_a", "item_b", "confidence", "margin", "teacher_a"):
        np.testing.assert_array_equal(kept.columns[name], cols[name][expected])
    for side in ("a", "b"):
        np.testing.assert_array_equal(kept.sides[side]["item_id"], table.sides[side]["item_id"][expected])
    np.testing.assert_array_equal(kept.counts, np.minimum(table.counts, k))
    assert (table.counts > k).any() and len(np.unique(cols["confidence"])) < len(cols["confidence"])
    assert select_pairs(table, methods.UNIFORM, k) is table


def test_join_leaves_the_interaction_stream_unchanged(world, table):
    data_dir, _ = world
    for (joined, y1), (plain, y2) in zip(batches(data_dir, table), batches(data_dir, None)):
        joined = as_numpy(joined)
        assert set(joined) - set(as_numpy(plain)) == {PAIRS_KEY}
        for name, value in as_numpy(plain).items():
            np.testing.assert_array_equal(joined[name], value)
        np.testing.assert_array_equal(y1.numpy(), y2.numpy())


def test_pairs_carry_the_item_side_features_of_their_items(world, table):
    data_dir, _ = world
    items = {row["index"]: row for row in DatasetDir(data_dir).items()}
    for side in ("a", "b"):
        for k in range(0, len(table), 97):
            row = items[table.columns[f"item_{side}"][k]]
            assert table.sides[side]["item_id"][k] == row["index"]
            assert table.sides[side]["item_category"][k] == row["category_index"]
            assert table.sides[side]["item_brand"][k] == row["brand_index"]
            assert table.sides[side]["item_pop"][k] == row["popularity"]


def test_pair_scores_are_the_backbone_on_the_pairs_user_with_each_item(world, table):
    data_dir, _ = world
    model = make_model(data_dir, "kd")
    x, _ = batches(data_dir, table, steps=1)[0]
    _, score_a, score_b = model._score_with_pairs(x, x[PAIRS_KEY], training=False)
    pairs = as_numpy(x[PAIRS_KEY])
    for side, scores in (("a", score_a), ("b", score_b)):
        inputs = {f.name: tf.constant(pairs[side][f.name] if f.item_side else pairs["user"][f.name])
                  for f in features.model_features()}
        np.testing.assert_allclose(scores.numpy(), model.backbone(inputs, training=False)[:, 0].numpy(),
                                   rtol=1e-5, atol=1e-6)
    assert not np.allclose(score_a.numpy(), score_b.numpy())


# --- the methods ------------------------------------------------------------------------------


def test_base_ignores_pairs_exactly(world, table):
    data_dir, _ = world
    with_pairs, without = make_model(data_dir, "base"), make_model(data_dir, "base")
    fit(with_pairs, batches(data_dir, table))
    fit(without, batches(data_dir, None))
    for a, b in zip(weights(with_pairs.backbone), weights(without.backbone)):
        np.testing.assert_array_equal(a, b)


def test_kd_equals_sllmr_with_alpha_fixed_at_one(world, table):
    data_dir, _ = world
    data = batches(data_dir, table)
    kd = make_model(data_dir, "kd", llm_loss_weight=0.5)
    sllmr = make_model(data_dir, "sllmr", table=table, llm_loss_weight=0.5)
    sllmr.loss_terms(*data[0], training=False)  # build the gate, then pin alpha to 1
    sllmr.gate.coefficients.assign(np.r_[60.0, np.zeros(len(SIGNALS))])  # sigmoid(60) == 1.0 in float32
    sllmr.gate.covariance.assign(np.zeros((len(SIGNALS) + 1,) * 2))
    assert np.all(sllmr.loss_terms(*data[0], training=False).weight.numpy() == 1.0)
    fit(kd, data)
    fit(sllmr, data)
    assert np.all(sllmr.loss_terms(*data[0], training=False).weight.numpy() == 1.0)
    for a, b in zip(weights(kd.backbone), weights(sllmr.backbone)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    base = make_model(data_dir, "base")
    fit(base, data)
    assert not np.allclose(weights(base.backbone)[0], weights(kd.backbone)[0])  # the pairs did count


def test_heuristic_weights_exactly_the_pairs_of_cold_start_users_or_longtail_items(world, table):
    data_dir, _ = world
    model = make_model(data_dir, "heuristic")
    for x, y in batches(data_dir, table, steps=3):
        pairs = as_numpy(x[PAIRS_KEY])
        expected = (pairs["is_cold_user"] > 0) | (pairs["a"]["is_longtail_item"] > 0) | (
            pairs["b"]["is_longtail_item"] > 0)
        np.testing.assert_array_equal(model.loss_terms(x, y, training=False).weight.numpy(),
                                      expected.astype(np.float32))
        assert 0 < expected.mean() < 1


def _probability(logit: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-logit))


def _bce(p: np.ndarray, logit: np.ndarray) -> np.ndarray:
    q = _probability(logit)
    return -(p * np.log(q) + (1 - p) * np.log(1 - q))


@pytest.mark.parametrize("method, settings, per_pair", [
    ("kd", {}, lambda pairs, a, b: np.log1p(np.exp(-(a - b)))),
    ("kd", {"pair_loss": methods.HINGE, "pair_margin": 0.05}, lambda pairs, a, b: np.maximum(0.0, 0.05 - (a - b))),
    ("kd_pointwise", {}, lambda pairs, a, b: 0.5 * (_bce(pairs["teacher_a"], a) + _bce(pairs["teacher_b"], b))),
    ("kd_mse", {}, lambda pairs, a, b: 0.5 * ((_probability(a) - pairs["teacher_a"]) ** 2
                                              + (_probability(b) - pairs["teacher_b"]) ** 2)),
], ids=["softplus", "hinge", "kd_pointwise", "kd_mse"])
def test_the_llm_term_is_the_methods_loss_averaged_over_the_pairs(world, table, method, settings, per_pair):
    """kd_pointwise pulls each item towards its teacher probability by BCE, kd_mse by squared error."""
    data_dir, _ = world
    model = make_model(data_dir, method, dropout=0.0, **settings)
    x, y = batches(data_dir, table, steps=1)[0]
    terms = model.loss_terms(x, y, training=False)
    _, score_a, score_b = model._score_with_pairs(x, x[PAIRS_KEY], training=False)
    a, b = (s.numpy().astype(np.float64) for s in (score_a, score_b))
    np.testing.assert_allclose(terms.llm.numpy(), np.mean(per_pair(as_numpy(x[PAIRS_KEY]), a, b)), rtol=1e-4)


@pytest.mark.parametrize("margin", [0.0, 1.0])
def test_the_hinge_moves_only_the_pairs_closer_than_its_margin(margin):
    """d/ds_a max(0, m - (s_a - s_b)) is -1 where s_a - s_b < m and 0 beyond: with m = 0 only the
    pairs the backbone orders against the LLM move."""
    score_a = tf.Variable([-1.0, 0.5, 2.0, -0.3, 0.4, 3.0])
    score_b = tf.constant([0.0, 1.0, 1.5, -2.0, 0.1, 1.0])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(pair_loss(score_a - score_b, methods.HINGE, margin))
    difference = score_a.numpy() - score_b.numpy()
    np.testing.assert_array_equal(tape.gradient(loss, score_a).numpy(), np.where(difference < margin, -1.0, 0.0))
    np.testing.assert_allclose(loss.numpy(), np.maximum(0.0, margin - difference).sum(), rtol=1e-6)
    assert (difference < margin).any() and (difference > margin).any()


def test_teacher_probability_is_the_confidence_weighted_win_rate():
    users = np.array([1, 1, 1, 2])
    a, b = np.array([10, 10, 11, 10]), np.array([11, 12, 12, 11])
    confidence = np.array([0.9, 0.6, 0.8, 1.0], np.float32)
    teacher_a, teacher_b = teacher_probabilities(users, a, b, confidence, num_items=20)
    # user 1: item 10 wins 0.9 and 0.6; item 11 gets 0.1 and 0.8; item 12 gets 0.4 and 0.2
    np.testing.assert_allclose(teacher_a, [0.75, 0.75, 0.45, 1.0], rtol=1e-6)
    np.testing.assert_allclose(teacher_b, [0.45, 0.3, 0.3, 0.0], atol=1e-6)


def test_sllmr_noaug_drops_the_augmented_pairs(world):
    data_dir, pairs_dir = world
    data = DatasetDir(data_dir)
    everything = load_pairs_table(pairs_dir, data)
    regular = load_pairs_table(pairs_dir, data, keep_augmented=methods.get_method("sllmr_noaug").keep_augmented)
    augmented = (everything.columns["source"] == features.SOURCE_AUGMENTED).sum()
    assert augmented > 0
    assert len(regular) == len(everything) - augmented
    assert np.all(regular.columns["source"] == features.SOURCE_REGULAR)


def test_pairs_scored_on_another_dataset_are_rejected_naming_the_pair_and_field(world):
    data_dir, pairs_dir = world
    raw = pairs_dir_lib.read_pairs(pairs_dir)
    raw["item_b"] = raw["item_b"].copy()
    raw["item_b"][5] = 10_000
    with pytest.raises(ArtifactError, match=r"pair 5 field 'item_b': item index outside 1\.\.\d+"):
        build_pairs_table(raw, DatasetDir(data_dir), origin=pairs_dir)


# --- the gate ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backbone_name", BACKBONES.names())
def test_every_variable_of_backbone_and_gate_gets_a_gradient(world, table, backbone_name):
    data_dir, _ = world
    model = make_model(data_dir, "sllmr", table=table, backbone_name=backbone_name)
    data = batches(data_dir, table, steps=1)
    assert silent_variables(model, data[0]) == []
    assert len(model.trainable_variables) == len(model.backbone.trainable_variables)
    fit(model, data)  # and the training step, which refuses a variable without a gradient, runs


@pytest.fixture(scope="module")
def two_batches(world, table) -> list:
    return batches(world[0], table, steps=2)


@pytest.mark.parametrize("backbone_name", BACKBONES.names())
def test_kd_mse_and_sllmr_paper_train_every_backbone_and_the_paper_gate_with_it(world, two_batches, backbone_name):
    data_dir, _ = world
    data = two_batches
    for method, gate_variables in (("kd_mse", 0), ("sllmr_paper", 2)):
        model = make_model(data_dir, method, backbone_name=backbone_name, backbone_config=TINY)
        assert silent_variables(model, data[0]) == []
        assert len(model.trainable_variables) == len(model.backbone.trainable_variables) + gate_variables
        before = [v.numpy().copy() for v in model.trainable_variables]
        for batch in data:
            model.train_step(batch)  # eagerly: the step refuses a variable without a gradient
        assert all(not np.array_equal(old, v.numpy()) for old, v in zip(before, model.trainable_variables))


def test_the_gate_is_fitted_before_training_and_never_changes_during_it(world, table):
    data_dir, _ = world
    model = make_model(data_dir, "sllmr", table=table, llm_loss_weight=0.5)
    data = batches(data_dir, table, steps=4)
    model.loss_terms(*data[0], training=False)
    before = [w.copy() for w in model.gate.get_weights()]
    backbone_before = [w.copy() for w in model.backbone.get_weights()]
    fit(model, data)
    for old, new in zip(before, model.gate.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert any(not np.array_equal(a, b) for a, b in zip(backbone_before, model.backbone.get_weights()))


def test_the_fitted_gate_trusts_an_llm_that_agrees_with_the_outcomes_and_not_one_that_never_does(world, table):
    def fitted_alpha(outcome: int) -> float:
        pairs = {**table.rows(), "outcome": np.where(table.columns["outcome"] >= 0, outcome, -1)}
        gate, report = fit_gate(pairs)
        alpha = tf.sigmoid(gate(gate_signals(pairs))[0]).numpy()
        assert report.known_pairs > 100 and report.users > 10
        return float(alpha.mean())

    reliable, contrary = fitted_alpha(1), fitted_alpha(0)
    print(f"mean alpha: an LLM agreeing with every outcome {reliable:.3f}, with none {contrary:.3f}")
    assert reliable > 0.95 and contrary < 0.05


def test_the_gate_refuses_pairs_without_a_known_outcome(table):
    pairs = {**table.rows(), "outcome": np.full_like(table.columns["outcome"], -1)}
    with pytest.raises(DataError, match="gate needs at least"):
        fit_gate(pairs)


# --- the paper's gate (sllmr_paper) -----------------------------------------------------------


@pytest.mark.parametrize("uncertainty", methods.PAPER_UNCERTAINTIES)
def test_the_paper_gate_starts_at_one_half_and_reads_the_backbones_uncertainty(world, table, uncertainty):
    data_dir, _ = world
    model = make_model(data_dir, "sllmr_paper", paper_uncertainty=uncertainty)
    x, y = batches(data_dir, table, steps=1)[0]
    terms = model.loss_terms(x, y, training=False)
    np.testing.assert_array_equal(terms.alpha.numpy(), 0.5)
    np.testing.assert_array_equal(terms.weight.numpy(), terms.alpha.numpy())
    _, score_a, _ = model._score_with_pairs(x, x[PAIRS_KEY], training=False)
    p = _probability(score_a.numpy().astype(np.float64))
    q = 1 - np.maximum(p, 1 - p) if uncertainty == methods.MAX_PROB else -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    z_a = terms.gate_inputs.numpy()[:, :len(PAPER_SIGNALS)]
    np.testing.assert_allclose(z_a[:, PAPER_SIGNALS.index("uncertainty")], q, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(z_a[:, PAPER_SIGNALS.index("is_cold_user")], as_numpy(x[PAIRS_KEY])["is_cold_user"] > 0)


def test_the_paper_gate_learns_only_through_the_llm_term_of_the_full_loss(world, table):
    """No target, no regulariser: the gate's gradient is lambda times the LLM term's, the BCE does
    not reach it, and the backbone gets nothing through the uncertainty it reads."""
    data_dir, _ = world
    model = make_model(data_dir, "sllmr_paper", llm_loss_weight=0.5)
    x, y = batches(data_dir, table, steps=1)[0]
    with tf.GradientTape(persistent=True) as tape:
        terms = model.loss_terms(x, y, training=False)
    gate = model.paper_gate.trainable_variables
    assert all(g is None for g in tape.gradient(terms.bce, gate))
    for total, llm in zip(tape.gradient(terms.total, gate), tape.gradient(terms.llm, gate)):
        np.testing.assert_allclose(total.numpy(), 0.5 * llm.numpy(), rtol=1e-6)
        assert np.all(total.numpy() > 0)  # every signal is >= 0: descent lowers every w and b
    assert all(g is None for g in tape.gradient(terms.alpha, model.backbone.trainable_variables))


@pytest.mark.parametrize("llm_loss_weight", [0.0, 0.5])
def test_training_leaves_the_paper_gate_alone_without_the_llm_term_and_only_lowers_it_with(
        world, table, llm_loss_weight):
    data_dir, _ = world
    model = make_model(data_dir, "sllmr_paper", llm_loss_weight=llm_loss_weight, backbone_config=TINY)
    data = batches(data_dir, table, steps=4)
    for batch in data:
        model.train_step(batch)
    parameters = np.array(list(model.paper_gate.parameters().values()))
    alpha = model.loss_terms(*data[0], training=False).alpha.numpy()
    if llm_loss_weight == 0:
        assert np.all(parameters == 0) and np.all(alpha == 0.5)
    else:
        assert np.all(parameters < 0) and np.all(alpha < 0.5)
