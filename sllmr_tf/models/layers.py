"""Interaction layers shared by the backbone families.

Each layer is a serializable Keras layer (`get_config`) so a backbone can be
saved and restored as a SavedModel without its Python builder.
Shapes: B batch, F fields, D embedding dim, L history length.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def _l2(l2: float):
    return tf.keras.regularizers.l2(l2) if l2 else None


@tf.keras.utils.register_keras_serializable(package="sllmr")
class MLP(tf.keras.layers.Layer):
    """Dense -> activation -> dropout for each width in `units`: the deep tower."""

    def __init__(self, units: Sequence[int], dropout: float = 0.0, activation: str = "relu",
                 l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = tuple(int(u) for u in units)
        self.dropout = float(dropout)
        self.activation = activation
        self.l2 = float(l2)
        self._dense = [tf.keras.layers.Dense(u, activation=activation, kernel_regularizer=_l2(l2),
                                             name=f"dense_{i}") for i, u in enumerate(self.units)]
        self._drop = [tf.keras.layers.Dropout(self.dropout) for _ in self.units]

    def call(self, x: tf.Tensor, training=None) -> tf.Tensor:
        for dense, drop in zip(self._dense, self._drop):
            x = drop(dense(x), training=training)
        return x

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "dropout": self.dropout,
                "activation": self.activation, "l2": self.l2}


@tf.keras.utils.register_keras_serializable(package="sllmr")
class LocalActivationPooling(tf.keras.layers.Layer):
    """DIN's local activation unit (Zhou et al. 2018): history vectors weighted by relevance to the target.

    weight(k) = MLP([q, k, q - k, q * k]) with no softmax (the paper keeps the
    intensity of interest); padded positions get weight exactly 0. Call with
    (query [B, D], keys [B, L, D], mask [B, L]) -> [B, D].

    The first layer's kernel W over the 4D concat is applied in its expanded form
    q (W_q + W_d) + k (W_k - W_d) + (q * k) W_p: the same function with the
    query term computed once per example instead of once per history position.
    """

    def __init__(self, units: Sequence[int] = (80, 40), activation: str = "sigmoid",
                 l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = tuple(int(u) for u in units)
        self.activation = activation
        self.l2 = float(l2)
        self._hidden = [tf.keras.layers.Dense(u, activation=activation, kernel_regularizer=_l2(l2),
                                              name=f"dense_{i + 1}")
                        for i, u in enumerate(self.units[1:])]
        self._score = tf.keras.layers.Dense(1, name="score")

    def build(self, input_shape):
        dim = int(input_shape[0][-1])
        self.kernel = self.add_weight(name="kernel", shape=(4 * dim, self.units[0]),
                                      initializer="glorot_uniform", regularizer=_l2(self.l2))
        self.bias = self.add_weight(name="bias", shape=(self.units[0],), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs) -> tf.Tensor:
        query, keys, mask = inputs
        w_q, w_k, w_d, w_p = tf.split(self.kernel, 4, axis=0)
        length, dim = keys.shape[1], keys.shape[2]
        flat_keys = tf.reshape(keys, (-1, dim))
        flat_products = tf.reshape(keys * query[:, None, :], (-1, dim))
        hidden = tf.reshape(tf.matmul(flat_keys, w_k - w_d) + tf.matmul(flat_products, w_p),
                            (-1, length, self.units[0]))
        hidden += (tf.matmul(query, w_q + w_d) + self.bias)[:, None, :]
        hidden = tf.keras.activations.get(self.activation)(hidden)
        for dense in self._hidden:
            hidden = dense(hidden)
        weights = self._score(hidden) * mask[:, :, None]  # [B, L, 1]
        return tf.reduce_sum(weights * keys, axis=1)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "l2": self.l2}


@tf.keras.utils.register_keras_serializable(package="sllmr")
class SelfAttentionInteraction(tf.keras.layers.Layer):
    """AutoInt's interacting layer (Song et al. 2019): multi-head self-attention across fields.

    [B, F, D] -> [B, F, size]; heads split `size`; with `residual` the input is
    projected to `size` and added before the ReLU, as in the paper.

    The projections start N(0, 1) truncated at 2 standard deviations, far above
    Glorot's scale: the fields are embeddings that start at N(0, 1e-4), so with
    Glorot weights the attention logits start near zero and the layer learns too
    slowly to matter within a CTR model's few epochs (BUILD_NOTES.md, AutoInt).
    """

    def __init__(self, size: int = 64, heads: int = 2, residual: bool = True, l2: float = 0.0,
                 initializer_stddev: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)
        self.heads = int(heads)
        self.residual = bool(residual)
        self.l2 = float(l2)
        self.initializer_stddev = float(initializer_stddev)

    def build(self, input_shape):
        dim = int(input_shape[-1])
        # Query, key, value (and residual) projections side by side: one GEMM for all.
        count = 4 if self.residual else 3
        self.projection = self.add_weight(
            name="projection", shape=(dim, count * self.size), regularizer=_l2(self.l2),
            initializer=tf.keras.initializers.TruncatedNormal(stddev=self.initializer_stddev))
        super().build(input_shape)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        fields, dim = x.shape[1], x.shape[2]
        head_dim = self.size // self.heads
        projected = tf.matmul(tf.reshape(x, (-1, dim)), self.projection)
        # [B, F, n, H, d] -> [n, B, H, F, d]: batched matmuls over (B, H) beat einsum here.
        projected = tf.transpose(tf.reshape(projected, (-1, fields, projected.shape[1] // self.size,
                                                        self.heads, head_dim)), (2, 0, 3, 1, 4))
        query, key, value, *residual = tf.unstack(projected)  # unstack: its gradient is one pack
        attention = tf.nn.softmax(tf.matmul(query, key, transpose_b=True), axis=-1)
        out = tf.matmul(attention, value)
        if self.residual:
            out += residual[0]
        out = tf.reshape(tf.transpose(out, (0, 2, 1, 3)), (-1, fields, self.size))
        return tf.nn.relu(out)

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size, "heads": self.heads,
                "residual": self.residual, "l2": self.l2, "initializer_stddev": self.initializer_stddev}


@tf.keras.utils.register_keras_serializable(package="sllmr")
class CompressedInteraction(tf.keras.layers.Layer):
    """xDeepFM's Compressed Interaction Network (Lian et al. 2018): [B, F, D] -> [B, sum of kept maps].

    Layer k+1 has maps X^{k+1}_h = sum_{i,j} W^{k,h}_{ij} (X^k_i * X^0_j), a 1x1
    convolution over the outer product along D; each layer's maps are sum-pooled
    over D. With `split_half`, all but the last layer send half their maps forward
    and half to the output. Maps are kept as [B, D, H] to avoid transposes.
    """

    def __init__(self, units: Sequence[int] = (100, 100, 100), split_half: bool = True,
                 l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = tuple(int(u) for u in units)
        self.split_half = bool(split_half)
        self.l2 = float(l2)
        if split_half and any(u % 2 for u in self.units[:-1]):
            raise ValueError(f"split_half needs even CIN units, got {self.units}")

    def build(self, input_shape):
        fields = int(input_shape[1])
        self.kernels, self.biases = [], []
        previous = fields
        for i, units in enumerate(self.units):
            self.kernels.append(self.add_weight(
                name=f"kernel_{i}", shape=(previous * fields, units),
                initializer="glorot_uniform", regularizer=_l2(self.l2)))
            self.biases.append(self.add_weight(name=f"bias_{i}", shape=(units,),
                                               initializer="zeros"))
            last = i == len(self.units) - 1
            previous = units // 2 if self.split_half and not last else units
        super().build(input_shape)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        x0 = tf.transpose(x, (0, 2, 1))  # [B, D, F]
        dim, fields = x0.shape[1], x0.shape[2]
        hidden, pooled = x0, []
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            outer = hidden[:, :, :, None] * x0[:, :, None, :]  # [B, D, H, F]
            outer = tf.reshape(outer, (-1, dim, hidden.shape[2] * fields))
            maps = tf.einsum("bdz,zu->bdu", outer, kernel) + bias
            if self.split_half and i < len(self.units) - 1:
                hidden, kept = tf.split(maps, 2, axis=2)
            else:
                hidden = kept = maps
            pooled.append(tf.reduce_sum(kept, axis=1))
        return tf.concat(pooled, axis=1)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "split_half": self.split_half,
                "l2": self.l2}


@tf.keras.utils.register_keras_serializable(package="sllmr")
class FactorizationMachine(tf.keras.layers.Layer):
    """FM second-order term (Rendle 2010): sum over field pairs of <v_i, v_j>. [B, F, D] -> [B, 1]."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        square_of_sum = tf.square(tf.reduce_sum(x, axis=1))
        sum_of_square = tf.reduce_sum(tf.square(x), axis=1)
        return 0.5 * tf.reduce_sum(square_of_sum - sum_of_square, axis=1, keepdims=True)


@tf.keras.utils.register_keras_serializable(package="sllmr")
class VectorCross(tf.keras.layers.Layer):
    """The original DCN cross layer (Wang et al. 2017): x_{l+1} = x_0 (x_l . w) + b + x_l.

    TFRS's `Cross` implements only the matrix form of DCNv2 (x_0 * (W x_l + b) + x_l;
    its low-rank W = U V is still a matrix), so the vector form lives here, with
    the same call signature: `layer(x0, x=None)`, x defaulting to x0.
    """

    def __init__(self, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.l2 = float(l2)

    def build(self, input_shape):
        dim = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(dim, 1), initializer="glorot_uniform",
                                      regularizer=_l2(self.l2))
        self.bias = self.add_weight(name="bias", shape=(dim,), initializer="zeros")
        super().build(input_shape)

    def call(self, x0: tf.Tensor, x: tf.Tensor | None = None) -> tf.Tensor:
        x = x0 if x is None else x
        return x0 * tf.matmul(x, self.kernel) + self.bias + x

    def get_config(self) -> dict:
        return {**super().get_config(), "l2": self.l2}
