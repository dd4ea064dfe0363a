"""CTR backbones built from the feature spec, by name.

    from sllmr_tf.models.build import build_backbone
    model = build_backbone("din", features.vocab_sizes(stats))
    logits = model({name: ids for name in model.input_names})  # (batch, 1)

`models.backbones.BACKBONES` lists the names without importing TensorFlow.
"""
