"""One module per backbone family; importing this package registers them all."""
from sllmr_tf.models.backbones import autoint, dcn, deepfm, din, dnn, wide_deep, xdeepfm  # noqa: F401
