"""The response cache: keys, persistence, and survival of a kill mid-write."""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from sllmr_tf.scoring.base import RankRequest, RankResponse
from sllmr_tf.scoring.cache import ResponseCache, cache_key


@dataclasses.dataclass
class _Backend:
    name: str = "openai"
    model: str = "m1"
    temperature: float = 0.0

    def decoding_params(self) -> dict:
        return {"temperature": self.temperature}


REQUEST = RankRequest(user_index=3, history=(5, 4), candidates=(7, 8, 9), prompt="rank these")
RESPONSE = RankResponse(np.array([3.0, 1.0, 0.0], np.float32), np.array([False, False, True]), "A > B", True)


def test_key_changes_with_backend_model_params_prompt_and_items():
    base = cache_key(_Backend(), REQUEST)
    assert base == cache_key(_Backend(), REQUEST)
    variants = [cache_key(_Backend(name="simulated"), REQUEST), cache_key(_Backend(model="m2"), REQUEST),
                cache_key(_Backend(temperature=0.7), REQUEST),
                cache_key(_Backend(), dataclasses.replace(REQUEST, prompt="rank these!")),
                cache_key(_Backend(), dataclasses.replace(REQUEST, user_index=4)),
                cache_key(_Backend(), dataclasses.replace(REQUEST, candidates=(8, 7, 9)))]
    assert len({base, *variants}) == 7


def test_answers_survive_a_reopen_and_are_shared_across_writers(tmp_path):
    cache = ResponseCache(str(tmp_path), "00000-of-00002")
    cache.put("k1", RESPONSE)
    cache.close()
    other = ResponseCache(str(tmp_path), "00001-of-00002")
    got = other.get("k1")
    np.testing.assert_array_equal(got.scores, RESPONSE.scores)
    np.testing.assert_array_equal(got.missing, RESPONSE.missing)
    assert (got.raw, got.ok) == ("A > B", True)
    assert other.get("k2") is None
    other.close()


def test_a_torn_last_line_is_skipped_and_the_next_answer_starts_a_fresh_line(tmp_path):
    cache = ResponseCache(str(tmp_path), "w")
    cache.put("k1", RESPONSE)
    cache.close()
    with open(cache.path, "ab") as f:  # a kill in the middle of a write
        f.write(b'{"key": "k2", "scores": [1.0, 0.')
    resumed = ResponseCache(str(tmp_path), "w")
    assert resumed.torn_lines == 1 and len(resumed) == 1
    resumed.put("k3", RESPONSE)
    resumed.close()
    again = ResponseCache(str(tmp_path), "w")
    assert again.get("k1") is not None and again.get("k3") is not None and again.get("k2") is None
    assert again.torn_lines == 1
    again.close()
    assert os.path.basename(cache.path) == "responses-w.jsonl"
