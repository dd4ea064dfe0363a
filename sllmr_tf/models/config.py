"""Hyper-parameters of every backbone, with the LLM-CF / S-LLMR protocol defaults.

One frozen dataclass for all families keeps a run's model fully described by
(backbone name, config); each family reads only its own knobs.
"""
from __future__ import annotations

import dataclasses

from sllmr_tf.errors import ConfigError

DTYPE_POLICIES = ("float32", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class BackboneConfig:
    embedding_dim: int = 32
    mlp_units: tuple[int, ...] = (200, 80)
    dropout: float = 0.1
    l2: float = 0.0  # L2 penalty on embedding tables and dense kernels; 0 disables it
    # Keras dtype policy: "mixed_bfloat16" computes in bfloat16 (fast on CPUs with AMX and on
    # GPUs) while variables and the logit stay float32.
    dtype_policy: str = "float32"
    # DIN: the local activation unit's hidden layers and their activation.
    din_attention_units: tuple[int, ...] = (80, 40)
    din_attention_activation: str = "sigmoid"
    # AutoInt: interacting layers, heads, attention size summed over heads, residual link.
    autoint_layers: int = 1
    autoint_heads: int = 2
    autoint_attention_size: int = 64
    autoint_residual: bool = True
    # DCN (vector cross, Wang et al. 2017) and DCNv2 (matrix cross, Wang et al. 2021).
    dcn_cross_layers: int = 3
    dcnv2_cross_layers: int = 2
    dcnv2_projection_dim: int | None = None  # low-rank W = U V when set
    # xDeepFM: feature maps per CIN layer; split-half feeds half of each map forward.
    xdeepfm_cin_units: tuple[int, ...] = (100, 100, 100)
    xdeepfm_cin_split_half: bool = True
    # kar: width of the frozen language-model item vectors entering as extra fields (0: none),
    # and the hidden units of the adapter that maps each to a field.
    knowledge_dim: int = 0
    knowledge_adapter_units: tuple[int, ...] = (128,)

    def __post_init__(self):
        if self.embedding_dim <= 0:
            raise ConfigError(f"embedding_dim must be positive, got {self.embedding_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.l2 < 0:
            raise ConfigError(f"l2 must be non-negative, got {self.l2}")
        if self.knowledge_dim < 0:
            raise ConfigError(f"knowledge_dim must be >= 0, got {self.knowledge_dim}")
        if self.dtype_policy not in DTYPE_POLICIES:
            raise ConfigError(f"dtype_policy must be one of {DTYPE_POLICIES}, got {self.dtype_policy!r}")
        if self.autoint_attention_size % self.autoint_heads:
            raise ConfigError(
                f"autoint_attention_size {self.autoint_attention_size} is not divisible by "
                f"autoint_heads {self.autoint_heads}")
