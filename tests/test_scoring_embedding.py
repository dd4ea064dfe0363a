"""The embedding scorer: the real all-MiniLM-L6-v2, its item cache, and what it ranks."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from sllmr_tf.data import pipeline
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.scoring import embedding_backend
from sllmr_tf.scoring.base import RankRequest
from sllmr_tf.scoring.embedding_backend import EMBEDDING_DIM, EmbeddingBackend, SentenceEncoder
from sllmr_tf.errors import ConfigError

# The similarity matrix the sentence-transformers documentation publishes for these
# sentences under all-MiniLM-L6-v2 (computed there with PyTorch).
REFERENCE_SENTENCES = ("The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium.")
REFERENCE_SIMILARITY = np.array([[1.0000, 0.6660, 0.1046],
                                 [0.6660, 1.0000, 0.1411],
                                 [0.1046, 0.1411, 1.0000]])

# (sentence, its paraphrase, an unrelated sentence)
PARAPHRASE_SETS = (
    ("A man is playing a guitar.", "Someone is strumming an acoustic guitar.",
     "The stock market fell sharply this morning."),
    ("How do I reset my password?", "I forgot my password, how can I change it?",
     "What is the capital of France?"),
    ("The cat is sleeping on the sofa.", "A kitten naps on the couch.",
     "Interest rates were raised by the central bank."),
    ("Toy Story (1995); genres: Animation, Children's, Comedy",
     "an animated comedy film for kids",
     "Schindler's List (1993); genres: Drama, War"),
)

MOVIES = ("Toy Story (1995); genres: Animation, Children's, Comedy",
          "Aladdin (1992); genres: Animation, Children's, Comedy, Musical",
          "The Lion King (1994); genres: Animation, Children's, Musical",
          "Schindler's List (1993); genres: Drama, War",
          "Saving Private Ryan (1998); genres: Action, Drama, War",
          "Alien (1979); genres: Action, Horror, Sci-Fi, Thriller")


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


def write_items(data_dir: str, texts: list[str]) -> None:
    """A dataset dir holding just what the scorer reads: stats.json and items.jsonl."""
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, "stats.json"), "w") as f:
        json.dump({"num_items": len(texts)}, f)
    with open(os.path.join(data_dir, "items.jsonl"), "w") as f:
        for index, text in enumerate(texts, start=1):
            f.write(json.dumps({"index": index, "id": str(index), "title": text, "text": text}) + "\n")


@pytest.mark.slow
def test_reproduces_the_published_similarity_matrix(encoder):
    e = encoder.encode(REFERENCE_SENTENCES)
    np.testing.assert_allclose(e @ e.T, REFERENCE_SIMILARITY, atol=1e-3)


@pytest.mark.slow
def test_embeddings_are_unit_length_and_384_dimensional(encoder):
    e = encoder.encode([s for group in PARAPHRASE_SETS for s in group])
    assert e.shape == (3 * len(PARAPHRASE_SETS), EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_paraphrases_are_closer_than_unrelated_sentences(encoder):
    for sentence, paraphrase, unrelated in PARAPHRASE_SETS:
        s, p, u = encoder.encode([sentence, paraphrase, unrelated])
        assert s @ p > s @ u + 0.2, (sentence, float(s @ p), float(s @ u))


@pytest.mark.slow
def test_padding_in_a_batch_does_not_change_an_embedding(encoder):
    texts = ["short", "a much longer sentence that forces the short one to be padded in its batch"]
    together = encoder.encode(texts)
    alone = np.concatenate([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


@pytest.mark.slow
def test_ranks_a_movie_of_the_users_genre_first(encoder, tmp_path, monkeypatch):
    write_items(str(tmp_path / "data"), list(MOVIES))
    monkeypatch.setattr(embedding_backend, "SentenceEncoder", lambda batch_size: encoder)
    backend = EmbeddingBackend(str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    # History: two children's animations (items 1, 2); candidates: the third one and the war films.
    response = backend.rank(RankRequest(user_index=1, history=(2, 1), candidates=(4, 3, 5), prompt=""))
    assert response.ok and not response.missing.any()
    assert int(np.argmax(response.scores)) == 1, response.raw


def test_a_cached_item_table_is_used_without_loading_the_model(tmp_path, monkeypatch):
    data_dir, cache_dir = str(tmp_path / "data"), str(tmp_path / "cache")
    write_items(data_dir, ["first", "second", "third"])
    table = np.zeros((4, EMBEDDING_DIM), np.float32)
    table[1:, :3] = np.eye(3)  # three orthogonal unit items
    os.makedirs(cache_dir)
    np.save(embedding_backend.cache_path(cache_dir, ["first", "second", "third"]), table)

    def no_model(batch_size):
        raise AssertionError("the model was loaded although the item table is cached")

    monkeypatch.setattr(embedding_backend, "SentenceEncoder", no_model)
    backend = EmbeddingBackend(data_dir, cache_dir=cache_dir, profile_decay=0.5)
    np.testing.assert_array_equal(backend.items, table)
    # Most recent first: item 3 counts twice as much as item 1; item 2 is not in the history.
    scores = backend.rank(RankRequest(1, history=(3, 1), candidates=(1, 2, 3), prompt="")).scores
    assert scores[2] > scores[0] > scores[1] == 0.0
    np.testing.assert_allclose(scores[[2, 0]], np.array([2.0, 1.0]) / math.sqrt(5.0), rtol=1e-6)


def test_changed_item_texts_get_a_new_cache_file(tmp_path):
    assert (embedding_backend.cache_path(str(tmp_path), ["a", "b"])
            != embedding_backend.cache_path(str(tmp_path), ["a", "c"]))


def test_a_user_without_history_gets_no_answer(tmp_path):
    write_items(str(tmp_path / "data"), ["only"])
    np.save(embedding_backend.cache_path(str(tmp_path), ["only"]), np.zeros((2, EMBEDDING_DIM), np.float32))
    backend = EmbeddingBackend(str(tmp_path / "data"), cache_dir=str(tmp_path))
    response = backend.rank(RankRequest(1, history=(), candidates=(1,), prompt=""))
    assert not response.ok and "no history" in response.raw


def test_rejects_invalid_profile_settings(tmp_path):
    with pytest.raises(ConfigError, match="profile_decay"):
        EmbeddingBackend(str(tmp_path), profile_decay=0.0)
    with pytest.raises(ConfigError, match="profile_length"):
        EmbeddingBackend(str(tmp_path), profile_length=0)


def held_out_win_rate(backend: EmbeddingBackend, data_dir: str, negatives: int, seed: int) -> np.ndarray:
    """Per user: the share of random unseen items that score below the user's first test positive."""
    history = {u["index"]: u["train_items"] for u in DatasetDir(data_dir).users()}
    test_positive: dict[int, int] = {}
    for batch in pipeline.make_dataset(data_dir, "test", 4096):
        for user, item, label in zip(batch["user_id"].numpy(), batch["item_id"].numpy(), batch["label"].numpy()):
            if label > 0:
                test_positive.setdefault(int(user), int(item))
    rng = np.random.default_rng(seed)
    num_items = backend.items.shape[0] - 1
    rates = []
    for user, positive in sorted(test_positive.items()):
        if not history[user]:
            continue
        seen = set(history[user]) | {positive}
        unseen = np.setdiff1d(np.arange(1, num_items + 1), list(seen))
        candidates = (positive, *rng.choice(unseen, negatives, replace=False).tolist())
        response = backend.rank(RankRequest(user, tuple(reversed(history[user])), candidates, prompt=""))
        rates.append(np.mean(response.scores[0] > response.scores[1:]))
    return np.array(rates)


@pytest.mark.slow
def test_ranks_held_out_positives_above_random_items_more_often_than_chance(movielens_dir, encoder, tmp_path,
                                                                            monkeypatch):
    monkeypatch.setattr(embedding_backend, "SentenceEncoder", lambda batch_size: encoder)
    backend = EmbeddingBackend(movielens_dir, cache_dir=str(tmp_path))
    rates = held_out_win_rate(backend, movielens_dir, negatives=9, seed=0)
    rate, half_width = rates.mean(), 1.96 * rates.std(ddof=1) / math.sqrt(rates.size)
    print(f"\nheld-out positive above a random unseen item: {rate:.3f} "
          f"(95% CI {rate - half_width:.3f}-{rate + half_width:.3f}, n={rates.size} users x 9 items; chance 0.5)")
    assert rates.size > 300
    assert rate - half_width > 0.5
