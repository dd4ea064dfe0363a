"""What a serving client may rely on: the signature names, their input and output keys.

    serving_default  examples [batch] string (serialized tf.train.Example)
                     -> probability, logit [batch] float32            (Predict API)
    predict_raw      one tensor per model feature of features.py (int64 ids, histories
                     [batch, 20]) -> probability, logit [batch] float32   (Predict API)
    classify         inputs [batch] string -> classes [batch, 2] string ("0", "1"),
                     scores [batch, 2] float32 (P(label 0), P(label 1))  (Classify API)
    regress          inputs [batch] string -> outputs [batch] float32 = probability
                                                                          (Regress API)

A feature an example lacks reads as its default (features.py), so a client sends
only what it knows. The Classify and Regress keys are the ones TF Serving looks
up (tensorflow/serving servables/tensorflow/classifier.cc and regressor.cc).
Light on purpose: no TensorFlow import.
"""
from __future__ import annotations

SERVING_DEFAULT = "serving_default"
PREDICT_RAW = "predict_raw"
CLASSIFY = "classify"
REGRESS = "regress"
SIGNATURES = (SERVING_DEFAULT, PREDICT_RAW, CLASSIFY, REGRESS)

EXAMPLES = "examples"  # serving_default's input
PROBABILITY = "probability"
LOGIT = "logit"
INPUTS = "inputs"  # classify's and regress's input
CLASSES = "classes"
SCORES = "scores"
OUTPUTS = "outputs"
CLASS_LABELS = ("0", "1")  # the label values; scores[:, 1] is the click probability
