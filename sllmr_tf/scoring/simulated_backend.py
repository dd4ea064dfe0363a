"""The `simulated` scorer: an LLM stand-in that knows a synthetic world's truth, in part.

Real data never says whether an LLM's "a over b" was right, so the gate cannot
be checked against it. In a synthetic world the true preferences are known,
and this oracle answers with a reliability that depends on where the question
falls: by the user's history length (sparse / medium / heavy) and the item's
popularity (long-tail / head).

What the oracle knows is set by `target`: `propensity` (the default) is how
likely the user is to interact with the item and like it, the event the
models are tested on (`GroundTruth.propensity_logit`: exposure by popularity
and preference, then the rating), as a real LLM knows both what a user would
like and what is popular; `preference` is the user's taste alone
(`GroundTruth.preference_logit`), which ignores exposure.

How an answer is made. For each (user, item) the oracle either *knows* the
item, with a probability set by the region, fixed per (seed, user, item), so
every ordering and every list agrees, or it does not. Known candidates are
ranked by the target's true logit. An unknown candidate is a confident guess: it lands
above or below every known candidate, at random or, with position bias, by
where it was presented (earlier = higher). A pair of known items is therefore
always right and any pair with a guess is right half of the time, so a region
whose items are known with probability k has pairwise accuracy (1 + k^2) / 2;
the profile is given as that accuracy and k is derived from it. Pairs that mix
regions get (1 + k_a k_b) / 2, between the two.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np

from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.data.synthetic_world import GroundTruth
from sllmr_tf.errors import ConfigError
from sllmr_tf.scoring.base import RankRequest, RankResponse

USER_SEGMENTS = ("sparse", "medium", "heavy")
ITEM_SEGMENTS = ("longtail", "head")
TARGETS = ("propensity", "preference")
ALL_REGIONS = "all"  # an accuracy or position-bias entry for every region at once
DEFAULT_ACCURACY = ("sparse/longtail=0.9,sparse/head=0.85,medium/longtail=0.8,medium/head=0.75,"
                    "heavy/longtail=0.65,heavy/head=0.6")
DEFAULT_POSITION_BIAS = "sparse=0,medium=0.3,heavy=0.8"


def parse_settings(option: str, spec: str, keys: tuple[str, ...], low: float, high: float) -> dict[str, float]:
    """'k1=v1,k2=v2' -> {k1: v1, k2: v2} ('all=v' sets every key, later entries override);
    a bad entry names the option and the entry."""
    where = f"simulated scorer option {option}"
    values = {}
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        key, sep, text = (part.strip() for part in entry.partition("="))
        if not sep or key not in (*keys, ALL_REGIONS):
            raise ConfigError(f"{where}: bad entry {entry!r}; expected KEY=VALUE with KEY one of "
                              f"{[*keys, ALL_REGIONS]}")
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{where}: entry {entry!r}: {text!r} is not a number") from None
        if not low <= value <= high:
            raise ConfigError(f"{where}: entry {entry!r}: value must be in [{low}, {high}]")
        values.update(dict.fromkeys(keys, value) if key == ALL_REGIONS else {key: value})
    return values


@dataclasses.dataclass(frozen=True)
class ReliabilityProfile:
    """Pairwise accuracy per (user segment, item segment) and position bias per user segment."""

    accuracy: Mapping[str, float]  # "user_segment/item_segment" -> accuracy in [0.5, 1]
    position_bias: Mapping[str, float]  # user segment -> weight of presentation order in a guess, [0, 1]
    sparse_max_history: int  # users with at most this many train items are sparse
    heavy_min_history: int  # users with at least this many are heavy

    @classmethod
    def from_options(cls, accuracy: str = "", position_bias: str = "", sparse_max_history: int = 2,
                   heavy_min_history: int = 20) -> "ReliabilityProfile":
        """Entries given override the defaults, so one region can be changed alone."""
        if not 0 <= sparse_max_history < heavy_min_history:
            raise ConfigError(f"simulated scorer: need 0 <= sparse_max_history ({sparse_max_history}) "
                             f"< heavy_min_history ({heavy_min_history})")
        regions = tuple(f"{u}/{i}" for u in USER_SEGMENTS for i in ITEM_SEGMENTS)
        acc = parse_settings("accuracy", DEFAULT_ACCURACY, regions, 0.5, 1.0)
        acc.update(parse_settings("accuracy", accuracy, regions, 0.5, 1.0))
        bias = parse_settings("position_bias", DEFAULT_POSITION_BIAS, USER_SEGMENTS, 0.0, 1.0)
        bias.update(parse_settings("position_bias", position_bias, USER_SEGMENTS, 0.0, 1.0))
        return cls(acc, bias, sparse_max_history, heavy_min_history)

    def user_segment(self, history_length: int) -> str:
        if history_length <= self.sparse_max_history:
            return "sparse"
        return "heavy" if history_length >= self.heavy_min_history else "medium"

    def knowledge_prob(self, user_segment: str, item_segment: str) -> float:
        """P(an item is known) that gives the region its pairwise accuracy: (1 + k^2) / 2."""
        return math.sqrt(2.0 * self.accuracy[f"{user_segment}/{item_segment}"] - 1.0)


class SimulatedBackend:
    """Answers rank requests from the world's ground truth with a `ReliabilityProfile`."""

    name = "simulated"
    model = "ground-truth-oracle"
    deterministic = False  # position bias: the presented order changes the answer

    def __init__(self, data_dir: str, accuracy: str = "", position_bias: str = "",
                 sparse_max_history: int = 2, heavy_min_history: int = 20, seed: int = 0,
                 target: str = "propensity"):
        if target not in TARGETS:
            raise ConfigError(f"simulated scorer option target must be one of {TARGETS}, got {target!r}")
        dataset = DatasetDir(data_dir)
        if dataset.ground_truth_path is None:
            raise ConfigError(
                f"{data_dir}: the simulated scorer needs a synthetic world's ground_truth.npz; "
                "prepare one with --dataset=synthetic"
            )
        self.truth = GroundTruth.load(dataset.ground_truth_path)
        self.profile = ReliabilityProfile.from_options(accuracy, position_bias, sparse_max_history,
                                                       heavy_min_history)
        self.seed = seed
        self.target = target
        self._history_length = dataset.user_lookup()["train_positives"]
        self._is_longtail = dataset.item_lookup()["is_longtail_item"].astype(bool)

    def decoding_params(self) -> dict:
        return {"seed": self.seed, "target": self.target, **dataclasses.asdict(self.profile)}

    def user_segment(self, user: int) -> str:
        return self.profile.user_segment(int(self._history_length[user]))

    def item_segment(self, item: int) -> str:
        return "longtail" if self._is_longtail[item] else "head"

    def target_logit(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The true logit the oracle ranks known items by."""
        if self.target == "preference":
            return self.truth.preference_logit(users, items)
        return self.truth.propensity_logit(users, items)

    def true_correct_prob(self, user: int, items_a: np.ndarray, items_b: np.ndarray) -> np.ndarray:
        """How likely each pair 'a over b' of one user is correct under the target: P(the user
        prefers a), or P(a is the user's positive interaction rather than b)."""
        a, b = np.asarray(items_a, np.int64), np.asarray(items_b, np.int64)
        users = np.full(a.shape, user)
        if self.target == "preference":
            return self.truth.prob_prefers(users, a, b)
        return self.truth.prob_more_likely_positive(users, a, b)

    def true_informed_prob(self, user: int, items_a: np.ndarray, items_b: np.ndarray) -> np.ndarray:
        """How likely each 'a over b' is right given what the oracle knew: where it knew both items
        its order is the target's, right with true_correct_prob; where it guessed either, its
        order is a coin flip, right half of the time whatever the pair. This is the reliability
        a gate can learn without knowing which way the truth points."""
        a, b = np.asarray(items_a, np.int64), np.asarray(items_b, np.int64)
        items, where = np.unique(np.concatenate([a, b]), return_inverse=True)
        knew = self._known(user, items)[where]
        knew_both = knew[:len(a)] & knew[len(a):]
        return np.where(knew_both, self.true_correct_prob(user, a, b), 0.5)

    def _known(self, user: int, items: np.ndarray) -> np.ndarray:
        """Whether the oracle knows each of `items` for `user` (fixed per user and item)."""
        segment = self.user_segment(user)
        known_prob = np.array([self.profile.knowledge_prob(segment, self.item_segment(i)) for i in items])
        return np.array([self._knowledge_draw(user, i) for i in items]) < known_prob

    def rank(self, request: RankRequest) -> RankResponse:
        user = request.user_index
        items = np.asarray(request.candidates, np.int64)
        n = items.size
        segment = self.user_segment(user)
        known = self._known(user, items)

        # Guesses: uniform noise pulled towards "earlier is better" by the segment's position bias.
        bias = self.profile.position_bias[segment]
        rng = np.random.default_rng([self.seed, 2, user, *items.tolist()])
        guess = (1.0 - bias) * rng.random(n) + bias * (1.0 - np.arange(n) / max(n - 1, 1))
        logit = self.target_logit(np.full(n, user), items)
        tier = np.where(known, 1, np.where(guess >= 0.5, 2, 0))  # a guess lands above or below the known
        order = np.lexsort((np.where(known, logit, guess), tier))  # worst first
        scores = np.empty(n)
        scores[order] = np.arange(n, dtype=np.float64)
        best_first = " > ".join(str(i) for i in items[order[::-1]].tolist())
        guessed = ", ".join(str(i) for i in items[~known].tolist()) or "none"
        return RankResponse(scores=scores, missing=np.zeros(n, bool),
                            raw=f"{best_first} (guessed: {guessed})")

    def _knowledge_draw(self, user: int, item: int) -> float:
        """A uniform fixed per (seed, user, item): whether the item is known never depends on the list."""
        return float(np.random.default_rng([self.seed, 1, user, item]).random())


def create(data_dir: str, accuracy: str = "", position_bias: str = "", sparse_max_history: int = 2,
           heavy_min_history: int = 20, seed: int = 0, target: str = "propensity") -> SimulatedBackend:
    """The factory `backends.make_backend` calls with the --scorer_option values."""
    return SimulatedBackend(data_dir, accuracy, position_bias, sparse_max_history, heavy_min_history, seed,
                            target)
