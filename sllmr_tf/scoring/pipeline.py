"""The scoring job: candidate lists -> prompts -> answers (cached) -> Borda pairs on disk.

For one scorer process (the users of its data shards) it writes into pairs_dir
one pair file per data shard, the prompt log and the summary described in data/pairs_dir.py, and grows the response cache
(cache.py).

Each list is asked in `num_orders` shuffled orders; an unusable answer is asked
again with a stricter prompt up to `max_retries` times (a deterministic backend
is asked once per list, without retries); a list with no usable answer is
skipped and counted. A request that gets no answer (`TransportError`) counts as a
failed request; many in a row abort the job (`ScoringAborted`), and so does a
job whose lists all went without a usable answer: it names the last error and
leaves no pair shard or summary, so training cannot mistake it for a result.
The summary records the dataset's fingerprint, which training checks.
Requests run on a bounded thread pool; results are consumed in list order,
so the output does not depend on the concurrency. A backend may expose
`true_correct_prob(user, items_a, items_b)` and `true_informed_prob(...)` (arrays of one
user's pairs: synthetic worlds), `transport_retries` (a counter) and `absolute_scores` (its
scores are in [0, 1], so pairs come from score differences); all are optional.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import time
from typing import Callable

import numpy as np

from sllmr_tf import features, fileio, segments, shards
from sllmr_tf.data import pairs_dir as pairs_dir_lib
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.errors import ScoringAborted
from sllmr_tf.scoring import aggregate, prompts
from sllmr_tf.scoring.base import Backend, RankRequest, RankResponse, TransportError
from sllmr_tf.scoring.cache import ResponseCache, cache_key
from sllmr_tf.scoring.candidates import CandidateList, iter_lists
from sllmr_tf.scoring.config import ScoreConfig

SOURCE_NAMES = {features.SOURCE_REGULAR: "regular", features.SOURCE_AUGMENTED: "augmented"}


@dataclasses.dataclass
class _Ask:
    """One request of one ordering (for the log and the counters)."""

    order: int
    attempt: int
    candidates: tuple[int, ...]
    prompt: str
    response: RankResponse | None
    cached: bool
    error: str = ""


@dataclasses.dataclass
class _ListResult:
    cl: CandidateList
    asks: list[_Ask]
    scores: list[np.ndarray]  # usable answers, in the list's own candidate order
    absolute: bool = False  # the answers are scores in [0, 1] (aggregate.aggregate_pairs)


def score(data_dir: str, backend: Backend, pairs_dir: str, config: ScoreConfig = ScoreConfig(),
          cache_dir: str | None = None, log: Callable[[str], None] = print) -> dict:
    """Score one shard of users with `backend` and write its pairs into `pairs_dir`.

    Args:
        data_dir: a prepared dataset directory.
        backend: the scorer (`backends.make_backend`).
        pairs_dir: the output directory (data/pairs_dir.py).
        config: the lists, orderings, retries and shard of this job.
        cache_dir: the response cache (default: pairs_dir/cache); processes may share one.
        log: where progress lines go.

    Returns:
        The shard's summary (also written to pairs_dir, last).

    Raises:
        ConfigError: an invalid config.
        ScoringAborted: max_consecutive_failures requests in a row got no answer, or no list
            got a usable answer.
    """
    config.validate()
    dataset = DatasetDir(data_dir)
    items = dataset.items()
    users = dataset.users()
    rows = [{}] + items  # rows[k] is item index k
    is_longtail = dataset.item_lookup()["is_longtail_item"].astype(bool)
    train_sets = {int(u["index"]): set(u["train_items"]) for u in users}
    cold_users = {int(u["index"]) for u in users if u["is_cold"]}

    data_shards = shards.worker_shards(dataset.num_shards, config.shard_index, config.num_shards)
    done = _finished_summary(pairs_dir, backend, config, dataset, data_shards)
    if done is not None:
        log(f"{pairs_dir} already holds shard {shards.shard_suffix(config.shard_index, config.num_shards)}'s "
            f"{done['pairs']['written']:,} pairs from {backend.name} with these settings: nothing to do")
        return done
    lists = list(iter_lists(users, len(items), is_longtail, config.candidates,
                            config.shard_index, config.num_shards, num_data_shards=dataset.num_shards))
    if config.max_lists:
        lists = lists[:config.max_lists]
    num_orders = 1 if backend.deterministic else config.num_orders
    max_retries = 0 if backend.deterministic else config.max_retries  # the same request, the same answer
    style = getattr(backend, "prompt_style", prompts.STYLE_RANK)
    truth = getattr(backend, "true_correct_prob", None)
    informed = getattr(backend, "true_informed_prob", None)
    absolute = getattr(backend, "absolute_scores", False)
    shard = shards.shard_suffix(config.shard_index, config.num_shards)
    fileio.makedirs(pairs_dir)
    cache = ResponseCache(cache_dir or pairs_dir_lib.default_cache_dir(pairs_dir), shard)
    log(f"scoring {len(lists):,} lists of shard {shard} with {backend.name} ({backend.model}), "
        f"{num_orders} order(s) each; {len(cache):,} cached answers")

    def ask_list(cl: CandidateList) -> _ListResult:
        result = _ListResult(cl, [], [], absolute)
        history = [rows[i] for i in cl.history]
        for order in range(num_orders):
            perm = _ordering(cl, order, config.candidates.seed)
            shown = tuple(cl.candidates[j] for j in perm)
            for attempt in range(max_retries + 1):
                prompt = prompts.render(history, [rows[i] for i in shown], style, attempt)
                request = RankRequest(cl.user_index, cl.history, shown, prompt)
                key = cache_key(backend, request)
                response = cache.get(key)
                ask = _Ask(order, attempt, shown, prompt, response, response is not None)
                result.asks.append(ask)
                if response is None:
                    try:
                        response = ask.response = backend.rank(request)
                    except TransportError as e:  # one request without an answer never ends the job
                        ask.error = f"{type(e).__name__}: {e}"
                        break
                    cache.put(key, response)
                if response.ok:
                    scores = np.empty(len(perm), np.float64)
                    scores[perm] = response.scores
                    result.scores.append(scores)
                    break
        return result

    counts: collections.Counter = collections.Counter()
    start = last_report = time.time()
    consecutive_failures = 0
    last_problem = ""
    log_path = pairs_dir_lib.log_path(pairs_dir, config.shard_index, config.num_shards)
    try:
        with fileio.writing(log_path), concurrent.futures.ThreadPoolExecutor(config.concurrency) as pool, \
                pairs_dir_lib.PairFileWriters(pairs_dir, data_shards, dataset.num_shards,
                                              dataset.user_shards()) as writer, \
                fileio.open_file(log_path, "w") as log_file:
            chunk = 8 * config.concurrency
            for begin in range(0, len(lists), chunk):
                for result in pool.map(ask_list, lists[begin:begin + chunk]):
                    for ask in result.asks:
                        _count_ask(counts, ask)
                        last_problem = _problem(ask) or last_problem
                        consecutive_failures = consecutive_failures + 1 if ask.error else 0
                        log_file.write(json.dumps(_log_row(result.cl, ask)) + "\n")
                    if consecutive_failures >= config.max_consecutive_failures:
                        raise ScoringAborted(f"{consecutive_failures} requests in a row failed; last: "
                                             f"{result.asks[-1].error}")
                    _write_pairs(result, writer, counts, train_sets, cold_users, is_longtail, truth, informed, config)
                if time.time() - last_report >= config.progress_every_s:
                    last_report = time.time()
                    log(_progress(counts, len(lists), last_report - start))
            if lists and not counts["lists_scored"]:  # raised inside, so the empty shard is removed
                raise ScoringAborted(f"none of {len(lists):,} lists got a usable answer "
                                     f"({counts['request_failures']:,} requests failed, "
                                     f"{counts['answers_malformed']:,} answers unusable); last: {last_problem}")
    finally:
        cache.close()  # after the pool has joined its threads
    elapsed = time.time() - start
    summary = {**_summary(counts, backend, config, len(lists), num_orders, elapsed, cache.torn_lines),
               "dataset_fingerprint": dataset.fingerprint, "data_shards": data_shards,
               "num_data_shards": dataset.num_shards}
    fileio.write_json(pairs_dir_lib.summary_path(pairs_dir, config.shard_index, config.num_shards), summary)
    log(_progress(counts, len(lists), elapsed))
    return summary


def _finished_summary(pairs_dir: str, backend: Backend, config: ScoreConfig, dataset: DatasetDir,
                      data_shards: list[int]) -> dict | None:
    """The summary of this very job when it has finished before (same dataset, scorer, model,
    decoding and settings, every pair file there), else None. Its cached answers would give
    the same pairs again, so a rerun need not redo them."""
    previous = fileio.read_json(pairs_dir_lib.summary_path(pairs_dir, config.shard_index, config.num_shards))
    if previous is None:
        return None
    now = json.loads(json.dumps({"backend": backend.name, "model": backend.model,
                                 "decoding_params": backend.decoding_params(), "config": dataclasses.asdict(config),
                                 "dataset_fingerprint": dataset.fingerprint, "data_shards": data_shards}))
    complete = all(fileio.exists(pairs_dir_lib.pair_shard_path(pairs_dir, s, dataset.num_shards)) for s in data_shards)
    return previous if complete and all(previous.get(k) == v for k, v in now.items()) else None


def _ordering(cl: CandidateList, order: int, seed: int) -> np.ndarray:
    """Order 0 is the list's own random order; the others are seeded reshuffles."""
    k = len(cl.candidates)
    if order == 0:
        return np.arange(k)
    return np.random.default_rng([seed, cl.user_index, cl.list_index, order]).permutation(k)


def _count_ask(counts: collections.Counter, ask: _Ask) -> None:
    counts["answers_requested"] += 1
    counts["answers_from_cache" if ask.cached else "answers_asked"] += 1
    if ask.attempt > 0:
        counts["malformed_retries"] += 1
    if ask.error:
        counts["request_failures"] += 1
    elif ask.response.ok:
        counts["answers_parsed"] += 1
        counts["candidates_missing"] += int(np.sum(ask.response.missing))
    else:
        counts["answers_malformed"] += 1


def _write_pairs(result: _ListResult, writer: pairs_dir_lib.PairFileWriters, counts: collections.Counter,
                 train_sets: dict, cold_users: set, is_longtail: np.ndarray, truth, informed,
                 config: ScoreConfig) -> None:
    cl = result.cl
    source = SOURCE_NAMES[cl.source]
    counts[f"lists_{source}"] += 1
    if not result.scores:
        counts["lists_skipped"] += 1
        return
    counts["lists_scored"] += 1
    rng = np.random.default_rng([config.candidates.seed, cl.user_index, cl.list_index, 1 << 20])
    _, pairs = aggregate.aggregate_pairs(result.scores, config.max_pairs_per_list, rng, absolute=result.absolute)
    train = train_sets[cl.user_index]
    items_a = np.array([cl.candidates[pair.a] for pair in pairs], np.int64)
    items_b = np.array([cl.candidates[pair.b] for pair in pairs], np.int64)
    unknown = np.full(len(pairs), -1.0)
    true_correct = truth(cl.user_index, items_a, items_b) if truth else unknown
    true_informed = informed(cl.user_index, items_a, items_b) if informed else unknown
    for k, pair in enumerate(pairs):
        a, b = int(items_a[k]), int(items_b[k])
        outcome = 1 if (a in train and b not in train) else 0 if (b in train and a not in train) \
            else features.OUTCOME_UNKNOWN
        writer.write(cl.user_index, pairs_dir_lib.encode_pair({
            "user_id": cl.user_index, "item_a": a, "item_b": b, "confidence": pair.confidence, "margin": pair.margin,
            "source": cl.source, "outcome": outcome,
            "true_correct_prob": float(true_correct[k]), "true_informed_prob": float(true_informed[k])}))
        counts["pairs_written"] += 1
        counts[f"pairs_{source}"] += 1
        counts["confidence_sum"] += pair.confidence
        counts["pairs_cold_user"] += cl.user_index in cold_users
        counts["pairs_longtail_item"] += bool(segments.pair_touches_longtail(is_longtail[a], is_longtail[b]))
        if segments.outcome_known(outcome):
            counts["pairs_outcome_known"] += 1
            counts["pairs_agree_with_train"] += bool(segments.llm_agrees(outcome))


def _problem(ask: _Ask) -> str:
    """Why an ask gave no usable answer, in one line ('' when it did)."""
    if ask.error:
        return " ".join(ask.error.split())
    if not ask.response.ok:
        return "unusable answer " + json.dumps(ask.response.raw[:200])
    return ""


def _log_row(cl: CandidateList, ask: _Ask) -> dict:
    row = {"user": cl.user_index, "list": cl.list_index, "source": SOURCE_NAMES[cl.source],
           "order": ask.order, "attempt": ask.attempt, "candidates": list(ask.candidates),
           "cached": ask.cached, "prompt": ask.prompt}
    if ask.error:
        row["error"] = ask.error
    else:
        row.update(raw=ask.response.raw, ok=bool(ask.response.ok),
                   missing=int(np.sum(ask.response.missing)))
    return row


def _progress(counts: collections.Counter, total: int, elapsed: float) -> str:
    done = counts["lists_scored"] + counts["lists_skipped"]
    rate = done / elapsed if elapsed > 0 else 0.0
    return (f"lists {done:,}/{total:,} ({counts['lists_skipped']:,} skipped)  pairs {counts['pairs_written']:,}  "
            f"answers parsed {counts['answers_parsed']:,}/{counts['answers_requested']:,} "
            f"({counts['answers_from_cache']:,} cached, {counts['request_failures']:,} failed)  "
            f"{rate:.2f} lists/s")


def _summary(counts: collections.Counter, backend: Backend, config: ScoreConfig, num_lists: int,
             num_orders: int, elapsed: float, torn_cache_lines: int) -> dict:
    pairs = counts["pairs_written"]
    known = counts["pairs_outcome_known"]
    return {
        "backend": backend.name,
        "model": backend.model,
        "decoding_params": backend.decoding_params(),
        "config": dataclasses.asdict(config),
        "orders_per_list": num_orders,
        "lists": {"total": num_lists, "scored": counts["lists_scored"], "skipped": counts["lists_skipped"],
                  "by_source": {name: counts[f"lists_{name}"] for name in SOURCE_NAMES.values()}},
        "answers": {name: counts[name] for name in
                    ("answers_requested", "answers_asked", "answers_from_cache", "answers_parsed",
                     "answers_malformed", "request_failures", "malformed_retries", "candidates_missing")},
        "transport_retries": int(getattr(backend, "transport_retries", 0)),
        "torn_cache_lines": torn_cache_lines,
        "pairs": {"written": pairs,
                  "by_source": {name: counts[f"pairs_{name}"] for name in SOURCE_NAMES.values()},
                  "cold_user": counts["pairs_cold_user"], "longtail_item": counts["pairs_longtail_item"],
                  "outcome_known": known,
                  "agreement_with_train": counts["pairs_agree_with_train"] / known if known else None,
                  "mean_confidence": counts["confidence_sum"] / pairs if pairs else None},
        "seconds": round(elapsed, 3),
        "lists_per_s": round(num_lists / elapsed, 3) if elapsed > 0 else None,
        "pairs_per_s": round(pairs / elapsed, 3) if elapsed > 0 else None,
    }
