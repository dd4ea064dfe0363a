"""Backbones: every registered family builds from the feature spec, learns, and masks padding."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import sllmr_tf  # noqa: F401  (selects tf_keras before TensorFlow loads)
import tensorflow as tf

from sllmr_tf import features
from sllmr_tf.errors import ConfigError
from sllmr_tf.models.backbones import BACKBONES
from sllmr_tf.models.build import build_backbone
from sllmr_tf.models.config import BackboneConfig
from sllmr_tf.models.embedding import FeatureEmbedding
from sllmr_tf.models.layers import (CompressedInteraction, FactorizationMachine, LocalActivationPooling,
                                    SelfAttentionInteraction, VectorCross)

VOCAB_SIZES = {"user": 41, "item": 61, "category": 7, "brand": 6}
TINY = BackboneConfig(embedding_dim=8, mlp_units=(16, 8), din_attention_units=(8, 4),
                      autoint_attention_size=8, xdeepfm_cin_units=(8, 8))
ALL = BACKBONES.names()


def synthetic_examples(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Examples whose click probability follows a hidden per-user and per-item taste.

    The world (tastes, item categories/brands) is fixed; `seed` only draws the
    events, so two seeds give train and held-out examples from the same world.
    """
    world = np.random.default_rng(0)
    item_taste = world.normal(size=VOCAB_SIZES["item"])
    user_taste = world.normal(size=VOCAB_SIZES["user"])
    item_category = world.integers(1, VOCAB_SIZES["category"], VOCAB_SIZES["item"])
    item_brand = world.integers(1, VOCAB_SIZES["brand"], VOCAB_SIZES["item"])

    rng = np.random.default_rng(seed)
    users = rng.integers(1, VOCAB_SIZES["user"], n)
    items = rng.integers(1, VOCAB_SIZES["item"], n)
    lengths = rng.integers(0, features.HISTORY_LENGTH + 1, n)
    real = np.arange(features.HISTORY_LENGTH)[None, :] < lengths[:, None]
    history = np.where(real, rng.integers(1, VOCAB_SIZES["item"], (n, features.HISTORY_LENGTH)), 0)
    x = {
        "user_id": users, "item_id": items, "item_category": item_category[items],
        "item_brand": item_brand[items], "hist_item_ids": history,
        "hist_item_categories": np.where(real, item_category[history], 0),
    }
    p_click = 1 / (1 + np.exp(-2.5 * (item_taste[items] + user_taste[users])))
    labels = (rng.random(n) < p_click).astype(np.float32)[:, None]
    return {k: v.astype(np.int64) for k, v in x.items()}, labels


def fit_and_score(model: tf.keras.Model) -> tuple[np.ndarray, tf.keras.metrics.AUC]:
    """Train on 3,000 synthetic examples; held-out logits and their AUC."""
    x_train, y_train = synthetic_examples(3000, seed=1)
    x_test, y_test = synthetic_examples(1000, seed=2)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01),
                  loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(x_train, y_train, batch_size=128, epochs=4, verbose=0)
    logits = model.predict(x_test, batch_size=500, verbose=0)
    auc = tf.keras.metrics.AUC(from_logits=True)
    auc.update_state(y_test, logits)
    return logits, auc


def test_registry_holds_the_protocol_backbones_and_references():
    assert set(ALL) == {"deepfm", "din", "autoint", "dcn", "dcnv2", "xdeepfm", "dnn", "wide_deep"}


@pytest.mark.parametrize("name", ALL)
def test_backbone_learns_a_signal_and_beats_chance_on_held_out_examples(name):
    tf.keras.utils.set_random_seed(0)
    model = build_backbone(name, VOCAB_SIZES, TINY)
    assert sorted(model.input_names) == sorted(f.name for f in features.model_features())
    logits, auc = fit_and_score(model)
    assert logits.shape == (1000, 1)
    print(f"{name}: held-out AUC {auc.result().numpy():.3f}")
    assert auc.result().numpy() > 0.8


def _padded_batch() -> dict[str, np.ndarray]:
    """16 examples with exactly 5 real history items (ids and categories all non-zero)."""
    x, _ = synthetic_examples(16, seed=3)
    x["hist_item_ids"][:, 5:] = features.PADDING_INDEX
    x["hist_item_ids"][:, :5] = np.maximum(x["hist_item_ids"][:, :5], 1)
    x["hist_item_categories"][:, :5] = np.maximum(x["hist_item_categories"][:, :5], 1)
    x["hist_item_categories"][:, 5:] = features.PADDING_INDEX
    return x


@pytest.mark.parametrize("name", ALL)
def test_backbone_ignores_what_sits_at_padded_history_positions(name):
    tf.keras.utils.set_random_seed(0)
    model = build_backbone(name, VOCAB_SIZES, TINY)
    x = _padded_batch()
    reference = model(x).numpy()

    garbage_categories = {**x, "hist_item_categories": x["hist_item_categories"].copy()}
    garbage_categories["hist_item_categories"][:, 5:] = 3
    np.testing.assert_allclose(model(garbage_categories).numpy(), reference, rtol=1e-6, atol=1e-6)

    tables = model.get_layer("embedding").tables
    for table in tables.values():  # the padding row is also what padded positions look up
        table[0].assign(tf.random.normal(table.shape[1:]))
    np.testing.assert_allclose(model(x).numpy(), reference, rtol=1e-6, atol=1e-6)

    real_changed = {**x, "hist_item_ids": x["hist_item_ids"].copy()}
    real_changed["hist_item_ids"][:, 0] = real_changed["hist_item_ids"][:, 0] % 60 + 1
    assert not np.allclose(model(real_changed).numpy(), reference, atol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_target_item_and_history_share_one_item_table(name):
    model = build_backbone(name, VOCAB_SIZES, TINY)
    embedding = model.get_layer("embedding")
    item_tables = [v for v in model.weights if "item" in v.name]
    assert len(item_tables) == 1 and item_tables[0] is embedding.tables["item"]
    # The vector, plus one column for the first-order weight in families that have one.
    assert item_tables[0].shape[0] == VOCAB_SIZES["item"]
    assert item_tables[0].shape[1] in (TINY.embedding_dim, TINY.embedding_dim + 1)

    x = _padded_batch()
    x["item_id"][:] = 7
    x["hist_item_ids"][:, :5] = 9
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(model(x))
    grad = tf.convert_to_tensor(tape.gradient(out, item_tables[0]))
    touched = np.flatnonzero(np.abs(grad.numpy()).sum(axis=1))
    assert {7, 9} <= set(touched.tolist())


@pytest.mark.parametrize("name", ALL)
def test_backbone_rebuilds_from_its_config_with_identical_outputs(name):
    model = build_backbone(name, VOCAB_SIZES, TINY)
    clone = tf.keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    x = _padded_batch()
    np.testing.assert_allclose(clone(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_unknown_backbone_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown backbone 'fm2'.*deepfm"):
        build_backbone("fm2", VOCAB_SIZES)


def test_missing_vocabulary_is_a_clear_error():
    with pytest.raises(ConfigError, match="brand"):
        build_backbone("dnn", {k: v for k, v in VOCAB_SIZES.items() if k != "brand"})


def test_low_rank_dcnv2_uses_fewer_cross_weights_than_full_rank():
    full = build_backbone("dcnv2", VOCAB_SIZES, TINY)
    low = build_backbone("dcnv2", VOCAB_SIZES, dataclasses.replace(TINY, dcnv2_projection_dim=4))
    assert low.count_params() < full.count_params()



@pytest.mark.parametrize("name", ALL)
def test_mixed_bfloat16_backbone_keeps_float32_tables_and_logit_and_learns(name):
    tf.keras.utils.set_random_seed(0)
    model = build_backbone(name, VOCAB_SIZES, dataclasses.replace(TINY, dtype_policy="mixed_bfloat16"))
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # building leaks no policy
    assert all(v.dtype == tf.float32 for v in model.weights)
    assert model.get_layer("mlp").compute_dtype == "bfloat16"
    logits, auc = fit_and_score(model)
    assert logits.dtype == np.float32
    assert auc.result().numpy() > 0.8


def test_config_rejects_values_no_backbone_can_honour():
    for bad in (dict(embedding_dim=0), dict(dropout=1.0), dict(l2=-1.0), dict(dtype_policy="float16"),
                dict(autoint_attention_size=63)):
        with pytest.raises(ConfigError):
            BackboneConfig(**bad)


# The layers against direct transcriptions of their papers' formulas.

def _random(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_embedding_looks_up_each_feature_in_its_vocabulary_table():
    layer = FeatureEmbedding(VOCAB_SIZES, dim=4)
    x = _padded_batch()
    embedded = layer.split(layer(x))
    tables = {v: t.numpy() for v, t in layer.tables.items()}
    for f in features.model_features():
        expected = tables[f.vocabulary][x[f.name]]
        if f.shape:  # padded positions read as zeros
            expected = expected * (x["hist_item_ids"] != 0)[..., None]
        np.testing.assert_allclose(embedded[f.name].numpy(), expected, rtol=1e-6, atol=1e-7)


def test_pooled_history_is_the_mean_of_the_real_items_vectors():
    layer = FeatureEmbedding(VOCAB_SIZES, dim=4, pool_sequences=True)
    x = _padded_batch()
    x["hist_item_ids"][0, :] = features.PADDING_INDEX  # a user with no history pools to zeros
    fields = layer(x).numpy()
    assert fields.shape == (16, len(features.model_features()), 4)
    pooled = layer.split(layer(x))["hist_item_ids"].numpy()
    table = layer.tables["item"].numpy()
    for b in range(len(pooled)):
        real = x["hist_item_ids"][b][x["hist_item_ids"][b] != 0]
        expected = table[real].mean(axis=0) if len(real) else np.zeros(4)
        np.testing.assert_allclose(pooled[b], expected, rtol=1e-5, atol=1e-7)


def test_factorization_machine_sums_inner_products_over_field_pairs():
    v = _random(3, 5, 4)
    expected = [sum(v[b, i] @ v[b, j] for i in range(5) for j in range(i + 1, 5)) for b in range(3)]
    np.testing.assert_allclose(FactorizationMachine()(v).numpy()[:, 0], expected, rtol=1e-5)


def test_vector_cross_is_x0_times_projection_of_x_plus_bias_plus_x():
    x0, x = _random(3, 6), _random(3, 6, seed=1)
    layer = VectorCross()
    layer(x0, x)  # builds the weights
    layer.bias.assign(_random(6, seed=2))  # a non-zero bias, so the test sees it
    out = layer(x0, x).numpy()
    w, b = layer.kernel.numpy()[:, 0], layer.bias.numpy()
    np.testing.assert_allclose(out, x0 * (x @ w)[:, None] + b + x, rtol=1e-5, atol=1e-6)


def test_local_activation_is_an_mlp_over_query_key_difference_and_product():
    query, keys = _random(2, 4), _random(2, 3, 4, seed=1)
    mask = np.array([[1, 1, 0], [1, 0, 0]], np.float32)
    layer = LocalActivationPooling(units=(5, 3), activation="sigmoid")
    out = layer([query, keys, mask]).numpy()
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    hidden_dense, score = layer._hidden[0], layer._score
    for b in range(2):
        expected = np.zeros(4)
        for pos in range(3):
            q, k = query[b], keys[b, pos]
            h = sigmoid(np.concatenate([q, k, q - k, q * k]) @ layer.kernel.numpy() + layer.bias.numpy())
            h = sigmoid(h @ hidden_dense.kernel.numpy() + hidden_dense.bias.numpy())
            weight = (h @ score.kernel.numpy() + score.bias.numpy())[0]
            expected += mask[b, pos] * weight * k
        np.testing.assert_allclose(out[b], expected, rtol=1e-4, atol=1e-5)


def test_self_attention_interaction_is_per_head_softmax_attention_plus_residual():
    x = _random(2, 3, 4)
    layer = SelfAttentionInteraction(size=6, heads=2, residual=True)
    out = layer(x).numpy()
    w_q, w_k, w_v, w_r = np.split(layer.projection.numpy(), 4, axis=1)
    for b in range(2):
        heads = []
        for h in range(2):
            cols = slice(3 * h, 3 * h + 3)
            q, k, v = x[b] @ w_q[:, cols], x[b] @ w_k[:, cols], x[b] @ w_v[:, cols]
            scores = np.exp(q @ k.T)
            heads.append((scores / scores.sum(axis=1, keepdims=True)) @ v)
        expected = np.maximum(np.concatenate(heads, axis=1) + x[b] @ w_r, 0)
        np.testing.assert_allclose(out[b], expected, rtol=1e-4, atol=1e-5)


def test_compressed_interaction_layer_maps_are_weighted_sums_of_hadamard_products():
    x = _random(2, 3, 4)  # B, F, D
    layer = CompressedInteraction(units=(4, 2), split_half=True)
    out = layer(x).numpy()
    k0, k1 = (k.numpy() for k in layer.kernels)
    b0, b1 = (b.numpy() for b in layer.biases)
    for b in range(2):
        x0 = x[b]  # [F, D]
        maps1 = np.stack([sum(k0[i * 3 + j, h] * x0[i] * x0[j] for i in range(3) for j in range(3)) + b0[h]
                          for h in range(4)])  # [4, D]
        forward, kept1 = maps1[:2], maps1[2:]
        maps2 = np.stack([sum(k1[i * 3 + j, h] * forward[i] * x0[j] for i in range(2) for j in range(3))
                          + b1[h] for h in range(2)])
        expected = np.concatenate([kept1.sum(axis=1), maps2.sum(axis=1)])
        np.testing.assert_allclose(out[b], expected, rtol=1e-4, atol=1e-5)
