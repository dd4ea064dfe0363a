"""The prepare pipeline (Apache Beam): a raw source -> the files of a dataset directory.

    read      the interaction parts side by side, and the item rows (beam_sources)
    group     each user's events together, keyed by the raw user id
    k-core    optional: rounds of per-item counts until every user and item has >= k
    users     the user vocabulary (sorted raw ids) and the cold-user cut's threshold
    items     per item id: its first row and its kept train events (each user's split,
              summed: popularity); then the vocabularies, tags and the long-tail threshold
    examples  `user_examples` for each user, with the tables above as side inputs, encoded
    write     the shards of each split (all of a user's records in `shards.user_shard`; in a
              shard, records in the order of their sort keys, so every run and runner writes
              the same bytes), the vocab files, items.jsonl, users.jsonl, the source's extras
    summary   the counts stats.json needs and the first user error, as files for the driver

`prepare.py` runs it into a temporary directory, then raises the error or writes
stats.json. The side inputs hold one entry per user and per item (ids, small
integer tables); events and examples only ever exist per user.
"""
from __future__ import annotations

import collections
import json
import zlib
from typing import Callable, Iterable, Iterator

import apache_beam as beam
import numpy as np
from apache_beam.pvalue import AsList, AsSingleton, TaggedOutput

from sllmr_tf import features, fileio, segments, shards
from sllmr_tf.data import beam_sources, dataset_dir, split as split_lib
from sllmr_tf.data import user_examples as user_lib
from sllmr_tf.data.config import PrepareConfig
from sllmr_tf.data.records import ItemInfo, RawSource
from sllmr_tf.errors import DataError

SUMMARY_FILE = "summary.json"
FAILURE_FILE = "failure.json"
KCORE_MAX_ROUNDS = 20
EXAMPLES_STAGE, KCORE_STAGE = 2, 3  # after beam_sources' reading stages
_USERS = "users"
SEGMENT_COUNTS = ("examples", "positives", "cold_start_user_examples", "cold_start_user_positives",
                  "long_tail_item_examples", "long_tail_item_positives")

Log = Callable[[str], None]


def build(pipeline: beam.Pipeline, config: PrepareConfig, source: RawSource, out: str, work_dir: str,
          log: Log) -> None:
    """Add the prepare transforms to `pipeline`.

    Args:
        pipeline: an empty pipeline.
        config: the prepare settings.
        source: the raw source, read by the workers.
        out: the dataset directory to fill.
        work_dir: where the summary and a failure go for the driver (`read_summary`).
        log: where progress lines go.
    """
    reads = pipeline | "ReadInteractions" >> beam_sources.ReadInteractions(source, config.on_bad_record, log)
    item_reads = pipeline | "ReadItems" >> beam_sources.ReadItems(source, config.on_bad_record)
    read_failure = ((reads[beam_sources.FAILURE], item_reads[beam_sources.FAILURE])
                    | "ReadFailures" >> beam.Flatten() | "FirstReadFailure" >> beam_sources.FirstFailure())

    grouped = (reads.records  # (raw user id, its (item, rating, timestamp, order) records)
               | "KeyByUser" >> beam.MapTuple(lambda order, e: (e[0], (e[1], e[2], e[3], order)))
               | "GroupByUser" >> beam.GroupByKey())
    users, failures = grouped, [read_failure | "ReadFailure" >> beam.FlatMap(lambda first: first)]
    if config.kcore:
        users, kcore_failure = users | "KCore" >> _KCore(config.kcore)
        failures.append(kcore_failure)

    user_ids = users | "UserIds" >> beam.Keys() | "SortedUserIds" >> beam.CombineGlobally(_SortedIds())
    cut = user_ids | "CutThreshold" >> beam.Map(
        lambda ids: split_lib.cut_threshold(ids, config.cold_user_fraction, config.seed))

    popularity = (users
                  | "TrainEvents" >> beam.FlatMap(_item_train_events, config, AsSingleton(cut))
                  | "Popularity" >> beam.CombinePerKey(sum))
    first_rows = item_reads.rows | "FirstItemRows" >> beam_sources.FirstItemRows()
    catalogue = ({"popularity": popularity, "info": first_rows}
                 | "JoinItems" >> beam.CoGroupByKey()
                 | "InteractedItems" >> beam.FlatMapTuple(_interacted_item)
                 | "ItemRows" >> beam.combiners.ToList()
                 | "Catalogue" >> beam.Map(Catalogue))
    tables = catalogue | "ItemTables" >> beam.Map(lambda c: c.tables)  # without the item texts

    examples = users | "Examples" >> beam.ParDo(
        _UserExamplesFn(config), AsSingleton(user_ids), AsSingleton(cut), AsSingleton(tables),
        AsSingleton(read_failure)).with_outputs(_USERS, beam_sources.COUNTS, beam_sources.FAILURE, main="blocks")
    failures.append(examples[beam_sources.FAILURE])
    every_shard = pipeline | "EveryShard" >> beam.Create(
        [((name, s), None) for name in dataset_dir.SPLITS for s in range(config.num_shards)])
    _ = ((examples.blocks, every_shard)
         | "AllShards" >> beam.Flatten()
         | "GroupByShard" >> beam.GroupByKey()
         | "WriteShards" >> beam.Map(_write_shard, out, config.num_shards))

    _ = (examples[_USERS] | "UserRows" >> beam.combiners.ToList()
         | "WriteUsers" >> beam.Map(_write_users, out))
    _ = user_ids | "WriteUserVocab" >> beam.Map(lambda ids: _write_vocab(out, "user", ids))
    _ = catalogue | "WriteItems" >> beam.Map(lambda c: c.write(out))
    if hasattr(source, "write_extras"):
        _ = (pipeline | "Extras" >> beam.Create([source])
             | "WriteExtras" >> beam.Map(_write_extras, out, AsSingleton(user_ids), AsSingleton(catalogue)))

    counts = (reads[beam_sources.COUNTS], item_reads[beam_sources.COUNTS], examples[beam_sources.COUNTS],
              first_rows | "CountItemIds" >> beam.Map(lambda _: {"item_ids_read": 1}),
              grouped | "CountPairs" >> beam.MapTuple(lambda _, records: {"pairs_read": len({r[0] for r in records})}),
              catalogue | "CountItems" >> beam.Map(lambda c: c.counts()))
    _ = (counts | "Counts" >> beam.Flatten() | "SumCounts" >> beam.CombineGlobally(_SumCounts())
         | "WriteSummary" >> beam.Map(lambda summary: fileio.write_json(fileio.join(work_dir, SUMMARY_FILE), summary)))
    _ = (failures | "Failures" >> beam.Flatten()
         | "WriteFailure" >> beam_sources.WriteFirstFailure(fileio.join(work_dir, FAILURE_FILE)))


def read_summary(work_dir: str) -> dict:
    """What the pipeline counted, for stats.json: flat counts; a "/" in a name nests it
    ("train/examples", "bad_records_skipped/<file>", "vocab/<name>").

    Raises:
        UserError: the first user error the pipeline met (a bad record first, in file order).
    """
    beam_sources.raise_failure(fileio.join(work_dir, FAILURE_FILE))
    summary: dict = {"bad_records_skipped": {}}
    for name, value in fileio.read_json(fileio.join(work_dir, SUMMARY_FILE)).items():
        group, _, key = name.rpartition("/")
        (summary.setdefault(group, {}) if group else summary)[key] = value
    return summary


# --- users --------------------------------------------------------------------------------------


class _SortedIds(beam.CombineFn):
    """The distinct ids of a PCollection of ids, sorted: a vocabulary without its padding slot."""

    def create_accumulator(self) -> set:
        return set()

    def add_input(self, ids: set, key: str) -> set:
        ids.add(key)
        return ids

    def merge_accumulators(self, accumulators: Iterable[set]) -> set:
        return set().union(*accumulators)

    def extract_output(self, ids: set) -> np.ndarray:
        return np.array(sorted(ids), object)


def _item_train_events(user: tuple[str, Iterable[tuple]], config: PrepareConfig,
                       cut: tuple[int, str] | None) -> Iterator[tuple[str, int]]:
    """(item, kept train events of this user) for every item the user interacted with."""
    raw_user_id, records = user
    events = user_lib.UserEvents.from_records(records)
    split = user_lib.split_user(events, split_lib.is_cut(raw_user_id, cut, config.seed), config)
    train = collections.Counter(split.kept_train_items().tolist())
    for item in split.events.items.tolist():
        yield item, train[item]


class _UserExamplesFn(beam.DoFn):
    """One user -> a block of encoded records per split (keyed by split and shard), the user's
    users.jsonl row and counts; nothing once reading has failed."""

    def __init__(self, config: PrepareConfig):
        self.config = config

    def process(self, element, user_ids: np.ndarray, cut, tables: user_lib.ItemTables,
                read_failure: list) -> Iterator:
        if read_failure:
            return
        raw_user_id, records = element
        index = int(np.searchsorted(user_ids, raw_user_id)) + 1
        events = user_lib.UserEvents.from_records(records)
        try:
            user = user_lib.user_examples(raw_user_id, index, events,
                                          split_lib.is_cut(raw_user_id, cut, self.config.seed), tables, self.config)
        except DataError as error:
            yield TaggedOutput(beam_sources.FAILURE, ((EXAMPLES_STAGE, raw_user_id), error))
            return
        shard = shards.user_shard(raw_user_id, self.config.num_shards)
        counts = {"users": 1, "events": user.num_events, "max_events": user.num_events,
                  "positive_events": user.positive_events, "cold_start_users": int(user.is_cold)}
        for name, columns in user.columns.items():
            counts.update({f"{name}/{k}": v for k, v in segment_counts(columns).items()})
            if len(user.sort_keys[name]):
                records = [features.serialize(e) for e in features.iter_examples(columns)]
                yield (name, shard), encode_block(raw_user_id, user.sort_keys[name], records)
        yield TaggedOutput(_USERS, (index, json.dumps({"index": index, "id": raw_user_id,
                                                       "train_items": user.train_items,
                                                       "is_cold": user.is_cold}) + "\n"))
        yield TaggedOutput(beam_sources.COUNTS, counts)


def segment_counts(columns: dict[str, np.ndarray]) -> dict[str, int]:
    """SEGMENT_COUNTS of a split's columns: examples and positives overall, of cold-start users
    and on long-tail items."""
    label = columns["label"] > 0
    cold = columns["is_cold_user"] > 0
    tail = columns["is_longtail_item"] > 0
    values = (len(label), label.sum(), cold.sum(), (cold & label).sum(), tail.sum(), (tail & label).sum())
    return {name: int(value) for name, value in zip(SEGMENT_COUNTS, values)}


class _SumCounts(beam.CombineFn):
    """Sums count dicts; keys starting with 'max_' keep the largest value."""

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, total: dict, counts: dict) -> dict:
        for key, value in counts.items():
            total[key] = max(total.get(key, 0), value) if key.startswith("max_") else total.get(key, 0) + value
        return total

    def merge_accumulators(self, accumulators: Iterable[dict]) -> dict:
        merged: dict = {}
        for counts in accumulators:
            self.add_input(merged, counts)
        return merged

    def extract_output(self, total: dict) -> dict:
        return total


# --- items --------------------------------------------------------------------------------------


def _interacted_item(item: str, joined: dict) -> Iterator[tuple[str, int, ItemInfo | None]]:
    """(id, popularity, its first row or None) of an item that has interactions."""
    if joined["popularity"]:
        yield item, joined["popularity"][0], (joined["info"] or [None])[0]


class Catalogue:
    """Every interacted item: vocabularies, the item tables every user needs, the item rows."""

    def __init__(self, rows: list[tuple[str, int, ItemInfo | None]]):
        self.rows = sorted(rows, key=lambda row: row[0])
        infos = [info for _, _, info in self.rows if info is not None]
        self.vocabs = {
            "item": [item for item, _, _ in self.rows],
            "category": sorted({info.category for info in infos} - {""}),
            "brand": sorted({info.brand for info in infos} - {""}),
        }
        codes = {name: {key: k for k, key in enumerate(self.vocabs[name], start=1)} for name in ("category", "brand")}
        popularity = np.array([0] + [pop for _, pop, _ in self.rows], np.int64)
        self.tables = user_lib.ItemTables(
            ids=np.array(self.vocabs["item"], object),
            category=np.array([0] + [codes["category"].get(info.category, 0) if info else 0
                                     for _, _, info in self.rows], np.int64),
            brand=np.array([0] + [codes["brand"].get(info.brand, 0) if info else 0
                                  for _, _, info in self.rows], np.int64),
            popularity=popularity,
            long_tail=segments.long_tail_items(popularity) if self.rows else np.zeros(1, bool),
        )

    def counts(self) -> dict:
        return {"num_items": len(self.rows), "long_tail_items": int(self.tables.long_tail.sum()),
                **{f"vocab/{name}": len(vocab) for name, vocab in self.vocabs.items()}}

    def write(self, out: str) -> None:
        """The item, category and brand vocab files and items.jsonl."""
        for name, vocab in self.vocabs.items():
            _write_vocab(out, name, vocab)
        t = self.tables
        lines = []
        for index, (item, _, info) in enumerate(self.rows, start=1):
            info = info or ItemInfo(item)
            lines.append(json.dumps({
                "index": index, "id": item, "title": info.title, "category": info.category,
                "brand": info.brand, "category_index": int(t.category[index]),
                "brand_index": int(t.brand[index]), "text": info.text(),
                "popularity": int(t.popularity[index]), "is_longtail": bool(t.long_tail[index]),
            }, ensure_ascii=False) + "\n")
        fileio.write_atomic(fileio.join(out, dataset_dir.ITEMS_FILE), "".join(lines))


# --- k-core -------------------------------------------------------------------------------------


class _KCore(beam.PTransform):
    """Keep the users and items with >= k interactions among each other (the k-core).

    Rounds of per-item counts over the users that still have >= k surviving
    items; an item below k in a round is dropped from then on. The k-core is
    unique, so the result equals that of any other pruning order. Beam graphs
    are fixed before they run, so there are KCORE_MAX_ROUNDS rounds (each a
    pass over the grouped users and one count); data that has not settled by
    then is refused. Outputs the surviving users' events and that failure.
    """

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def expand(self, users):
        below = [users.pipeline | "NoneBelow" >> beam.Create([frozenset()])]  # per round, the items dropped
        for round_ in range(KCORE_MAX_ROUNDS):
            dropped = AsList(tuple(below) | f"Dropped{round_}" >> beam.Flatten())
            below.append(users
                         | f"Items{round_}" >> beam.FlatMap(_kcore_items, self.k, dropped)
                         | f"Below{round_}" >> beam.CombineGlobally(_ItemsBelow(self.k)))
        dropped = AsList(tuple(below) | "DroppedFinally" >> beam.Flatten())
        kept = users | "Survivors" >> beam.FlatMap(_kcore_events, self.k, dropped)
        failure = below[-1] | "Settled" >> beam.FlatMap(_unsettled, self.k)
        return kept, failure


class _ItemsBelow(beam.CombineFn):
    """The items counted fewer than k times."""

    def __init__(self, k: int):
        self.k = k

    def create_accumulator(self) -> collections.Counter:
        return collections.Counter()

    def add_input(self, counts: collections.Counter, item: str) -> collections.Counter:
        counts[item] += 1
        return counts

    def merge_accumulators(self, accumulators: Iterable[collections.Counter]) -> collections.Counter:
        merged = collections.Counter()
        for counts in accumulators:
            merged.update(counts)
        return merged

    def extract_output(self, counts: collections.Counter) -> frozenset:
        return frozenset(item for item, n in counts.items() if n < self.k)


def _kcore_items(user: tuple[str, Iterable[tuple]], k: int, dropped: list[frozenset]) -> set[str]:
    """The user's distinct items that survive every round's drops, if at least k of them do."""
    items = {record[0] for record in user[1]}.difference(*dropped)
    return items if len(items) >= k else set()


def _kcore_events(user: tuple[str, Iterable[tuple]], k: int, dropped: list[frozenset]) -> Iterator:
    raw_user_id, records = user
    surviving = _kcore_items(user, k, dropped)
    if surviving:
        yield raw_user_id, [record for record in records if record[0] in surviving]


def _unsettled(last_round: frozenset, k: int) -> Iterator:
    if last_round:
        yield (KCORE_STAGE,), DataError(
            f"{k}-core filtering did not settle within {KCORE_MAX_ROUNDS} rounds; filter the data "
            "before prepare or lower --kcore")


# --- write --------------------------------------------------------------------------------------


def encode_block(raw_user_id: str, sort_keys: np.ndarray, records: list[bytes]) -> tuple[str, int, bytes]:
    """One user's records of one split for the shuffle to its shard: (user, count, zlib of the
    sort keys, record lengths and records). Compressed, the shuffle holds about a third."""
    lengths = np.array([len(r) for r in records], "<u4")
    payload = sort_keys.astype("<i8").tobytes() + lengths.tobytes() + b"".join(records)
    return raw_user_id, len(records), zlib.compress(payload, 1)


def decode_block(block: tuple[str, int, bytes]) -> Iterator[tuple[int, str, int, bytes]]:
    """(sort key, user, row, record) of each record of an `encode_block` block."""
    raw_user_id, n, compressed = block
    payload = zlib.decompress(compressed)
    keys = np.frombuffer(payload, "<i8", n).tolist()
    lengths = np.frombuffer(payload, "<u4", n, offset=8 * n)
    ends = (12 * n + np.cumsum(lengths)).tolist()
    start = 12 * n
    for row, (key, end) in enumerate(zip(keys, ends)):
        yield key, raw_user_id, row, payload[start:end]
        start = end


def _write_shard(shard_blocks: tuple[tuple[str, int], Iterable], out: str, num_shards: int) -> None:
    """Write one shard, its records sorted by (sort key, user, row): the same bytes on every run."""
    (split, shard), blocks = shard_blocks
    records = sorted(record for block in blocks if block is not None for record in decode_block(block))
    with shards.ShardWriter(dataset_dir.split_shard_path(out, split, shard, num_shards)) as writer:
        for *_, record in records:
            writer.write(record)


def _write_vocab(out: str, name: str, vocab: Iterable[str]) -> None:
    fileio.write_atomic(fileio.join(out, dataset_dir.VOCAB_DIR, f"{name}.txt"),
                        "".join(key.replace("\n", " ") + "\n" for key in vocab))


def _write_users(rows: list[tuple[int, str]], out: str) -> None:
    """users.jsonl in index order: each user's train positives in time order, the prompts' history."""
    fileio.write_atomic(fileio.join(out, dataset_dir.USERS_FILE), "".join(line for _, line in sorted(rows)))


def _write_extras(source: RawSource, out: str, user_ids: np.ndarray, catalogue: Catalogue) -> None:
    source.write_extras(out, {"user": [""] + user_ids.tolist(), "item": [""] + catalogue.vocabs["item"]})

