"""The prepare pipeline against a reference that applies the per-user function user by user;
byte-identical output across runs and runners; bad records; k-core; leftovers of killed runs."""
from __future__ import annotations

import collections
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from sllmr_tf import features, fileio, segments, shards
from sllmr_tf.data import beam_runner, dataset_dir, prepare as prepare_lib, split as split_lib
from sllmr_tf.data import user_examples as user_lib
from sllmr_tf.data.config import PrepareConfig, RunnerConfig
from sllmr_tf.data.readers import open_source
from sllmr_tf.data.records import BadRecordPolicy
from sllmr_tf.errors import BadRecordError, ConfigError

CONFIG = dict(dataset="csv", test_k=2, valid_k=1, train_negatives=2, eval_negatives=3, cold_user_fraction=0.3,
              num_shards=3, seed=3)


def write_world(raw: pathlib.Path, users: int = 60, items: int = 80, seed: int = 0) -> str:
    """Users with 2-15 events each, some user-item pairs repeated, an item table that lacks some
    items and lists one twice."""
    rng = np.random.default_rng(seed)
    raw.mkdir(parents=True, exist_ok=True)
    rows = ["user_id,item_id,rating,timestamp"]
    for u in range(users):
        picks = rng.choice(items, size=rng.integers(2, 16), replace=False).tolist()
        picks += picks[:1] if u % 7 == 0 else []  # a repeated pair, rated again later
        for k, item in enumerate(picks):
            rows.append(f"u{u:03d},i{item:03d},{rng.integers(1, 6)},{1000 + 10 * k + rng.integers(0, 3)}")
    (raw / "interactions.csv").write_text("\n".join(rows) + "\n")
    meta = ["item_id,title,category,brand"] + [f"i{k:03d},Item {k},c{k % 4},b{k % 3}" for k in range(items - 8)]
    meta.append("i001,Second row of i001,c9,b9")
    (raw / "items.csv").write_text("\n".join(meta) + "\n")
    return str(raw)


def prepare(data_dir, raw_dir, runner=RunnerConfig(), **overrides) -> dict:
    config = PrepareConfig(**{**CONFIG, "raw_dir": raw_dir, **overrides})
    return prepare_lib.prepare(config, open_source(config), str(data_dir), log=lambda _: None, runner=runner)


def reference(config: PrepareConfig) -> dict:
    """Split -> shard -> records, built the plain way: every user's events gathered in a dict,
    the tables computed in one process, `user_examples` applied user by user, each shard's
    records sorted by (sort key, raw user id, row)."""
    source = open_source(config)
    policy = BadRecordPolicy(config.on_bad_record)
    first_rows = {}
    for info in source.items(policy):
        first_rows.setdefault(info.item, info)
    per_user = collections.defaultdict(list)
    for order, event in enumerate(source.interactions(policy)):
        per_user[event.user].append((event.item, event.rating, event.timestamp, order))
    users = sorted(per_user)
    threshold = split_lib.cut_threshold(users, config.cold_user_fraction, config.seed)
    cut = {u: split_lib.is_cut(u, threshold, config.seed) for u in users}
    events = {u: user_lib.UserEvents.from_records(per_user[u]) for u in users}
    popularity, items = collections.Counter(), set()
    for u in users:
        split = user_lib.split_user(events[u], cut[u], config)
        items |= set(split.events.items.tolist())
        popularity.update(split.kept_train_items().tolist())
    item_ids = sorted(items)
    infos = [first_rows.get(i) for i in item_ids]
    categories = sorted({i.category for i in infos if i} - {""})
    brands = sorted({i.brand for i in infos if i} - {""})
    pop = np.array([0] + [popularity[i] for i in item_ids])
    tables = user_lib.ItemTables(
        ids=np.array(item_ids, object),
        category=np.array([0] + [categories.index(i.category) + 1 if i and i.category else 0 for i in infos]),
        brand=np.array([0] + [brands.index(i.brand) + 1 if i and i.brand else 0 for i in infos]),
        popularity=pop, long_tail=segments.long_tail_items(pop))
    out = {name: collections.defaultdict(list) for name in dataset_dir.SPLITS}
    for index, u in enumerate(users, start=1):
        user = user_lib.user_examples(u, index, events[u], cut[u], tables, config)
        for name, columns in user.columns.items():
            records = [features.serialize(e) for e in features.iter_examples(columns)]
            out[name][shards.user_shard(u, config.num_shards)] += [
                (key, u, row, record) for row, (key, record) in enumerate(zip(user.sort_keys[name].tolist(), records))]
    return {"shards": {name: {s: [r[-1] for r in sorted(rows)] for s, rows in by_shard.items()}
                       for name, by_shard in out.items()},
            "users": users, "items": item_ids, "titles": {i: (first_rows[i].title if i in first_rows else "")
                                                         for i in item_ids}}


def shard_records(path: str) -> list[bytes]:
    return [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type=shards.COMPRESSION)]


def tree(path: pathlib.Path) -> dict[str, bytes]:
    """Every file below `path` with its bytes; stats.json without its timing."""
    files = {}
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        data = file.read_bytes()
        if file.name == dataset_dir.STATS_FILE:
            data = b"\n".join(line for line in data.split(b"\n") if b"prepare_seconds" not in line)
        files[str(file.relative_to(path))] = data
    return files


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    raw = write_world(root / "raw")
    prepare(root / "data", raw)
    return root, raw


def test_every_shard_holds_the_per_user_records_of_its_users_in_sort_key_order(prepared):
    root, raw = prepared
    expected = reference(PrepareConfig(**{**CONFIG, "raw_dir": raw}))
    data = dataset_dir.DatasetDir(str(root / "data"))
    for name in dataset_dir.SPLITS:
        paths = data.shards(name)
        assert len(paths) == CONFIG["num_shards"]
        for s, path in enumerate(paths):
            assert shard_records(path) == expected["shards"][name].get(s, []), (name, s)
    assert data.vocab("user")[1:] == expected["users"]
    assert data.vocab("item")[1:] == expected["items"]
    assert {row["id"]: row["title"] for row in data.items()} == expected["titles"]
    assert data.items()[1]["title"] == "Item 1"  # the first of its two rows
    stats = data.stats
    assert stats["num_users"] == 60 and stats["segments"]["cold_start_users"] >= round(0.3 * 60)
    assert stats["num_interactions"] == sum(1 for _ in open(os.path.join(raw, "interactions.csv"))) - 1 - 9


def test_a_rerun_into_another_directory_writes_the_same_bytes(prepared, tmp_path):
    root, raw = prepared
    prepare(tmp_path / "again", raw)
    assert tree(tmp_path / "again") == tree(root / "data")


@pytest.mark.slow
def test_the_local_runner_with_worker_processes_writes_the_same_bytes(prepared, tmp_path):
    root, raw = prepared
    prepare(tmp_path / "workers", raw, runner=RunnerConfig(direct_num_workers=2))
    assert tree(tmp_path / "workers") == tree(root / "data")


KILL_SEED = 20


def killed_prepare(data_dir: pathlib.Path, raw: str, moment: str, delay_s: float) -> None:
    """Start sllmr-prepare and SIGKILL it `delay_s` after `moment` ("pipeline": its temporary
    directory exists; "shards": it has started writing shards), while it still runs."""
    flags = [f"--{key}={value}" for key, value in CONFIG.items()] + [f"--raw_dir={raw}", f"--data_dir={data_dir}"]
    process = subprocess.Popen([sys.executable, "-m", "sllmr_tf.bins.prepare", *flags],
                               cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pattern = f"{data_dir.name}.prepare-*" + ("/train" if moment == "shards" else "")
    earlier = set(data_dir.parent.glob(pattern))
    deadline = time.time() + 300
    while not set(data_dir.parent.glob(pattern)) - earlier:
        assert process.poll() is None and time.time() < deadline, f"prepare ended before {moment}"
        time.sleep(0.002)
    time.sleep(delay_s)
    process.send_signal(signal.SIGKILL)
    process.wait()
    leftover = data_dir.parent / f"{data_dir.name}.prepare-{socket.gethostname()}-{process.pid}"
    assert [p for p in data_dir.parent.glob(f"{leftover.name}-*") if not (p / dataset_dir.STATS_FILE).exists()]


@pytest.mark.slow
def test_a_rerun_after_kills_writes_the_uninterrupted_bytes_and_removes_the_killed_runs_leftovers(prepared, tmp_path):
    root, raw = prepared
    rng = random.Random(KILL_SEED)
    data = tmp_path / "data"
    killed_prepare(data, raw, "pipeline", rng.uniform(0.0, 0.5))
    killed_prepare(data, raw, "shards", rng.uniform(0.0, 0.02))  # it removed the first run's leftover
    assert len(list(tmp_path.glob("data.prepare-*"))) == 1 and not data.exists()
    prepare(data, raw)
    assert sorted(os.listdir(tmp_path)) == ["data"]
    assert tree(data) == tree(root / "data")


def spoil(raw: str) -> None:
    """Line 3: a rating that is not a number; line 6: a negative timestamp."""
    path = pathlib.Path(raw) / "interactions.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 2)[0] + ",five," + lines[2].rsplit(",", 1)[1]
    lines[5] = lines[5].rsplit(",", 1)[0] + ",-4"
    path.write_text("\n".join(lines) + "\n")


def test_a_bad_record_fails_naming_file_line_and_field_and_leaves_nothing(tmp_path):
    raw = write_world(tmp_path / "raw")
    spoil(raw)
    with pytest.raises(BadRecordError, match=r"interactions\.csv:3: field 'rating': not a number: 'five'"):
        prepare(tmp_path / "data", raw)
    assert sorted(os.listdir(tmp_path)) == ["raw"]


def test_bad_records_are_counted_under_skip_and_a_killed_runs_leftovers_are_removed(tmp_path):
    raw = write_world(tmp_path / "raw")
    clean = prepare(tmp_path / "clean", raw)
    spoil(raw)
    data = tmp_path / "data"
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead = f"data.prepare-{socket.gethostname()}-{finished.pid}-{int(time.time())}-0123abcd"
    live = f"data.prepare-{socket.gethostname()}-{os.getpid()}-{int(time.time())}-0123abcd"
    stale = "data.prepare-elsewhere-1-1000-0123abcd"
    for name in (dead, live, stale, "other.prepare-elsewhere-1-1000-0123abcd"):
        (tmp_path / name).mkdir()
    stats = prepare(data, raw, on_bad_record="skip")
    assert stats["bad_records_skipped"] == {"interactions.csv": 2}
    assert stats["num_interactions"] == clean["num_interactions"] - 2
    assert sorted(os.listdir(tmp_path)) == sorted(["raw", "clean", "data", live, "other.prepare-elsewhere-1-1000-0123abcd"])


def test_kcore_keeps_exactly_the_users_and_items_with_k_interactions_among_themselves(tmp_path):
    raw = write_world(tmp_path / "raw", users=40, items=120, seed=1)
    stats = prepare(tmp_path / "data", raw, kcore=4, cold_user_fraction=0.0)
    pairs = {(e.user, e.item) for e in open_source(PrepareConfig(dataset="csv", raw_dir=raw)).interactions(
        BadRecordPolicy())}
    rounds = 0
    while True:  # peel users and items below 4 until nothing changes
        users = collections.Counter(u for u, _ in pairs)
        items = collections.Counter(i for _, i in pairs)
        kept = {(u, i) for u, i in pairs if users[u] >= 4 and items[i] >= 4}
        if kept == pairs:
            break
        pairs, rounds = kept, rounds + 1
    assert rounds >= 2  # the data needs more than one round
    data = dataset_dir.DatasetDir(str(tmp_path / "data"))
    assert data.vocab("user")[1:] == sorted({u for u, _ in pairs})
    assert data.vocab("item")[1:] == sorted({i for _, i in pairs})
    assert stats["num_interactions"] == len(pairs)


def test_leftovers_of_dead_processes_are_removed_and_running_ones_kept(tmp_path):
    target = str(tmp_path / "out")
    mine = fileio.owned_temporary_sibling(target, "prepare")
    os.makedirs(mine)
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead = mine.replace(f"-{os.getpid()}-", f"-{finished.pid}-")
    os.makedirs(dead)
    assert fileio.remove_abandoned_siblings(target, ["prepare"]) == [dead]
    assert fileio.remove_abandoned_siblings(target, ["prepare"], max_age_s=-1) == [mine]


@pytest.mark.parametrize("args, message", [
    (("--no_such_option=1",), r"unknown Beam pipeline option\(s\) --no_such_option"),
    (("--direct_num_workers=4",), r"--direct_num_workers: a flag of ours"),
    (("project=p",), r"pipeline options are --name=value, got project=p"),
])
def test_pipeline_options_are_checked_before_any_work(args, message):
    with pytest.raises(ConfigError, match=message):
        beam_runner.pipeline_options(RunnerConfig(runner="FlinkRunner", pipeline_args=args))


def test_a_cluster_runner_gets_its_own_options_and_the_local_one_its_workers():
    config = RunnerConfig(runner="DataflowRunner", pipeline_args=("--project=p", "--region=europe-west4"))
    options = beam_runner.pipeline_options(config).get_all_options()
    assert beam_runner.runner(config, beam_runner.pipeline_options(config)) == "DataflowRunner"
    assert (options["project"], options["region"]) == ("p", "europe-west4")
    local = RunnerConfig(direct_num_workers=0)
    assert beam_runner.pipeline_options(local).get_all_options()["direct_num_workers"] == 0
    with pytest.raises(ConfigError, match="--direct_num_workers is for the local runner"):
        RunnerConfig(runner="SparkRunner", direct_num_workers=2).validate()
