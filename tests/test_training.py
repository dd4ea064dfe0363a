"""The training model: the pair join, the swap, the methods and the gate's isolation."""
from __future__ import annotations

import dataclasses
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
from sllmr_tf.errors import ArtifactError
from sllmr_tf.training import methods
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
               **kwargs) -> TrainingModel:
    """A model whose initial weights depend only on the seed."""
    tf.keras.utils.set_random_seed(7)
    vocab = features.vocab_sizes(DatasetDir(data_dir).stats)
    backbone = build_backbone(backbone_name, vocab, BackboneConfig(dropout=dropout))
    model = TrainingModel(backbone, methods.get_method(method), **kwargs)
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
def test_join_gives_each_example_only_pairs_of_its_own_user_and_at_most_the_bound(
        world, table, pairs_per_example):
    data_dir, _ = world
    cap = math.ceil(pairs_per_example)
    has_pairs = table.counts > 0
    for x, _ in batches(data_dir, table, pairs_per_example):
        x = as_numpy(x)
        pairs, users = x[PAIRS_KEY], x["user_id"]
        np.testing.assert_array_equal(pairs["user_id"], users[pairs["row"]])
        per_row = np.bincount(pairs["row"], minlength=len(users))
        assert per_row.max() <= cap
        eligible = int(has_pairs[users].sum())
        assert len(pairs["row"]) == min(math.ceil(pairs_per_example * len(users)), eligible * cap)
        for row in np.flatnonzero(per_row > 1):  # several pairs of one example: distinct while there are
            chosen = np.stack([pairs["item_a"], pairs["item_b"]], 1)[pairs["row"] == row]
            assert len({tuple(p) for p in chosen}) == min(per_row[row], table.counts[users[row]])


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


def test_pair_scores_are_the_backbone_on_the_example_with_the_pair_item_swapped_in(world, table):
    data_dir, _ = world
    model = make_model(data_dir, "kd")
    x, _ = batches(data_dir, table, steps=1)[0]
    _, score_a, score_b = model._score_with_pairs(x, x[PAIRS_KEY], training=False)
    pairs = as_numpy(x[PAIRS_KEY])
    model_names = [f.name for f in features.model_features()]
    for side, scores in (("a", score_a), ("b", score_b)):
        swapped = {name: tf.gather(x[name], pairs["row"]) for name in model_names}
        for f in features.model_features():
            if f.item_side:
                swapped[f.name] = tf.constant(pairs[side][f.name])
        np.testing.assert_allclose(scores.numpy(), model.backbone(swapped, training=False)[:, 0].numpy(),
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
    kd, sllmr = make_model(data_dir, "kd", llm_loss_weight=0.5), make_model(data_dir, "sllmr", llm_loss_weight=0.5)
    sllmr.loss_terms(*data[0], training=False)  # build the gate, then pin alpha to 1
    sllmr.gate.out.bias.assign([60.0])  # sigmoid(60) == 1.0 in float32, and stays so for a few steps
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
    model = make_model(data_dir, "sllmr", backbone_name=backbone_name)
    data = batches(data_dir, table, steps=1)
    with tf.GradientTape() as tape:
        terms = model.loss_terms(*data[0], training=True)
    gradients = tape.gradient(terms.total, model.trainable_variables)
    silent = [v.name for g, v in zip(gradients, model.trainable_variables)
              if g is None or not np.any(tf.convert_to_tensor(g).numpy())]
    assert silent == [] and len(model.gate.trainable_variables) == 6
    fit(model, data)  # and the training step, which refuses a variable without a gradient, runs


def test_gradients_reach_the_gate_only_through_its_own_loss(world, table):
    data_dir, _ = world
    model = make_model(data_dir, "sllmr", llm_loss_weight=0.5)
    x, y = batches(data_dir, table, steps=1)[0]
    model.loss_terms(x, y, training=False)  # build the gate
    gate_vars, backbone_vars = model.gate.trainable_variables, model.backbone.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        terms = model.loss_terms(x, y, training=True)
        pair_term = model.llm_loss_weight * terms.llm
        gate_term = model.gate_loss_weight * terms.gate

    def norms(term, variables):
        return [0.0 if g is None else float(tf.norm(g)) for g in tape.gradient(term, variables)]

    assert norms(terms.bce, gate_vars) == [0.0] * len(gate_vars)
    assert norms(pair_term, gate_vars) == [0.0] * len(gate_vars)
    assert norms(gate_term, backbone_vars) == [0.0] * len(backbone_vars)
    assert min(norms(gate_term, gate_vars[-2:])) > 0  # the gate does learn from its own loss
    assert max(norms(pair_term, backbone_vars)) > 0  # and the pairs do reach the backbone


def test_gate_does_not_switch_off_even_where_switching_off_would_lower_the_loss(world, table):
    data_dir, _ = world
    # The LLM agrees with every observed outcome: a reliable LLM whose pairwise loss is still > 0.
    reliable = dataclasses.replace(table, columns={**table.columns,
                                                   "outcome": np.ones_like(table.columns["outcome"])})
    model = make_model(data_dir, "sllmr", llm_loss_weight=1.0)
    data = batches(data_dir, reliable, pairs_per_example=1.0, steps=40)
    alpha_before = float(np.mean(model.loss_terms(*data[0], training=False).weight))
    fit(model, data)
    after = [model.loss_terms(x, y, training=False) for x, y in data[:5]]
    alpha_after = float(np.mean(np.concatenate([t.weight.numpy() for t in after])))
    pair_term = float(np.mean([t.llm.numpy() for t in after]))
    print(f"alpha before {alpha_before:.3f}, after {alpha_after:.3f}; "
          f"switching the gate off would lower the loss by {pair_term:.3f}")
    assert pair_term > 0.05  # alpha -> 0 would remove this much loss ...
    assert alpha_after > 0.9 > alpha_before  # ... yet the gate learned to trust the reliable LLM
