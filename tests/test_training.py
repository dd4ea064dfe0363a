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
from sllmr_tf.training.model import TrainingModel
from sllmr_tf.training.pairs_table import PairsTable, build_pairs_table, load_pairs_table, teacher_probabilities

BATCH = 64
STEPS = 8


@pytest.fixture(scope="module")
def table(world) -> PairsTable:
    data_dir, pairs_dir = world
    return load_pairs_table(pairs_dir, DatasetDir(data_dir))


def batches(data_dir: str, table: PairsTable | None, pairs_per_example: float = 0.5, steps: int = STEPS):
    return list(training_batches(data_dir, BATCH, seed=3, table=table,
                                 pairs_per_example=pairs_per_example).take(steps))


def make_model(data_dir: str, method: str, dropout: float = 0.1, backbone_name: str = "dnn",
               table: PairsTable | None = None, **kwargs) -> TrainingModel:
    """A model whose initial weights depend only on the seed; methods with a gate get one fitted
    on `table`."""
    the_method = methods.get_method(method)
    gate = fit_gate(table.rows())[0] if the_method.has_gate else None
    tf.keras.utils.set_random_seed(7)
    vocab = features.vocab_sizes(DatasetDir(data_dir).stats)
    backbone = build_backbone(backbone_name, vocab, BackboneConfig(dropout=dropout))
    model = TrainingModel(backbone, the_method, gate=gate, **kwargs)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    return model


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


def test_kd_pointwise_pulls_each_item_towards_its_teacher_probability(world, table):
    data_dir, _ = world
    model = make_model(data_dir, "kd_pointwise", dropout=0.0)
    x, y = batches(data_dir, table, steps=1)[0]
    terms = model.loss_terms(x, y, training=False)
    _, score_a, score_b = model._score_with_pairs(x, x[PAIRS_KEY], training=False)
    pairs = as_numpy(x[PAIRS_KEY])

    def bce(p, logit):
        q = 1 / (1 + np.exp(-logit.numpy().astype(np.float64)))
        return -(p * np.log(q) + (1 - p) * np.log(1 - q))

    expected = np.mean(0.5 * (bce(pairs["teacher_a"], score_a) + bce(pairs["teacher_b"], score_b)))
    np.testing.assert_allclose(terms.llm.numpy(), expected, rtol=1e-4)


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
    with tf.GradientTape() as tape:
        terms = model.loss_terms(*data[0], training=True)
    gradients = tape.gradient(terms.total, model.trainable_variables)
    silent = [v.name for g, v in zip(gradients, model.trainable_variables)
              if g is None or not np.any(tf.convert_to_tensor(g).numpy())]
    assert silent == [] and len(model.trainable_variables) == len(model.backbone.trainable_variables)
    fit(model, data)  # and the training step, which refuses a variable without a gradient, runs


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
