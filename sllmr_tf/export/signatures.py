"""The serving graph: the backbone alone behind the signatures of contract.py.

The module tracks the backbone's variables and the signature functions, not the
Keras model: the SavedModel then holds plain TensorFlow functions that load in
any process, with no custom objects, no tf_keras and no sllmr_tf. Every input
spec and the example parser come from the feature spec.
"""
from __future__ import annotations

import tensorflow as tf

from sllmr_tf import features
from sllmr_tf.export import contract


def raw_input_spec() -> dict[str, tf.TensorSpec]:
    """predict_raw's inputs: one batched tensor per model feature, named after it."""
    return {f.name: tf.TensorSpec((None, *f.shape), tf.dtypes.as_dtype(f.dtype), name=f.name)
            for f in features.model_features()}


def serving_module(backbone: tf.keras.Model) -> tf.Module:
    """A tf.Module holding `backbone`'s variables and one tf.function per signature.

    Args:
        backbone: a model from {model feature: ids} to a (batch, 1) logit (`build_backbone`).

    Returns:
        The module; `signature_map(module)` gives what `tf.saved_model.save` needs.
    """
    module = tf.Module()
    module.backbone_variables = list(backbone.variables)  # what the SavedModel's checkpoint holds
    parse_spec = features.parse_spec(features.model_features(), defaults=True)

    @tf.function(input_signature=[raw_input_spec()])
    def scores(raw):
        logit = tf.cast(backbone(raw, training=False)[:, 0], tf.float32)
        return {contract.PROBABILITY: tf.sigmoid(logit), contract.LOGIT: logit}

    def scores_of_examples(serialized):
        return scores(tf.io.parse_example(serialized, parse_spec))

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.string, name=contract.EXAMPLES)])
    def serving_default(examples):
        return scores_of_examples(examples)

    @tf.function(input_signature=[raw_input_spec()])
    def predict_raw(raw):
        return scores(raw)

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.string, name=contract.INPUTS)])
    def classify(inputs):
        probability = scores_of_examples(inputs)[contract.PROBABILITY]
        class_scores = tf.stack([1.0 - probability, probability], axis=1)
        classes = tf.tile(tf.constant([contract.CLASS_LABELS]), [tf.shape(class_scores)[0], 1])
        return {contract.CLASSES: classes, contract.SCORES: class_scores}

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.string, name=contract.INPUTS)])
    def regress(inputs):
        return {contract.OUTPUTS: scores_of_examples(inputs)[contract.PROBABILITY]}

    module.serving_default = serving_default
    module.predict_raw = predict_raw
    module.classify = classify
    module.regress = regress
    return module


def signature_map(module: tf.Module) -> dict:
    """{signature name: concrete function} of a `serving_module`, for tf.saved_model.save."""
    return {name: getattr(module, name).get_concrete_function() for name in contract.SIGNATURES}
