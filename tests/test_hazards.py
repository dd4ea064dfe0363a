"""Every stage refuses what it cannot use, in one line: artifacts of another lineage, stale
datasets, scoring runs without a result, empty or unfinished pairs dirs, truncated shards, and
the data hazards prepare names (duplicate columns, no positives, padded ids, lopsided splits)."""
from __future__ import annotations

import errno
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading

import pytest

from conftest import prepare_dataset
from sllmr_tf import fileio
from sllmr_tf.data import prepare as prepare_lib
from sllmr_tf.data.config import PrepareConfig
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.data.pairs_dir import encode_pair, pair_shard_path, summary_path
from sllmr_tf.data.readers import open_source
from sllmr_tf.data.records import BadRecordPolicy
from sllmr_tf.errors import ArtifactError, BadRecordError, DataError, ScoringAborted
from sllmr_tf.export.identity import run_identity
from sllmr_tf.scoring import openai_backend, pipeline
from sllmr_tf.scoring.backends import make_backend
from sllmr_tf.scoring.config import OpenAIConfig, ScoreConfig
from sllmr_tf.shards import ShardWriter
from sllmr_tf.training import artifacts
from sllmr_tf.training.config import TrainConfig
from sllmr_tf.training.trainer import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = "user_id,item_id,rating,timestamp"
SHARED_UMASK = 0o002


def write_interactions(raw_dir: str, rows: list[str], header: str = HEADER) -> str:
    os.makedirs(raw_dir, exist_ok=True)
    with open(os.path.join(raw_dir, "interactions.csv"), "w") as f:
        f.write("\n".join([header, *rows]) + "\n")
    return raw_dir


def event_rows(users: int = 8, events: int = 4, pad: int = 0) -> list[str]:
    """Each user rates `events` items, the first 1 and the others 5 (so one train positive each);
    the first `pad` users' ids are padded."""
    rows = []
    for u in range(users):
        user = f" u{u} " if u < pad else f"u{u}"
        rows += [f"{user},i{(u + k) % 10},{1 if k == 0 else 5},{1000 + 10 * u + k}" for k in range(events)]
    return rows


def csv_config(raw_dir: str, **overrides) -> PrepareConfig:
    return PrepareConfig(**{"dataset": "csv", "raw_dir": raw_dir, "test_k": 1, "valid_k": 1, "eval_negatives": 1,
                            "num_shards": 2, **overrides})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A tiny CSV dataset (two users' ids padded), prepared under a group-sharing umask:
    (raw_dir, data_dir, stats, prepare's log lines)."""
    root = tmp_path_factory.mktemp("hazards")
    raw = write_interactions(str(root / "raw"), event_rows(pad=2))
    lines: list[str] = []
    config = csv_config(raw)
    previous = os.umask(SHARED_UMASK)
    try:
        stats = prepare_lib.prepare(config, open_source(config), str(root / "data"), log=lines.append)
    finally:
        os.umask(previous)
    return raw, str(root / "data"), stats, lines


def copy_of(data_dir: str, target) -> str:
    shutil.copytree(data_dir, target)
    return str(target)


# --- prepare: lineage decides "nothing to do" -----------------------------------------------------


def test_the_same_raw_files_under_another_raw_dir_spelling_are_already_prepared(dataset):
    raw, data_dir, stats, _ = dataset
    lines = []
    config = csv_config(raw + "/./")
    again = prepare_lib.prepare(config, open_source(config), data_dir, log=lines.append)
    assert again["dataset_fingerprint"] == stats["dataset_fingerprint"]
    assert lines == [f"{data_dir} is already prepared from these raw files with these settings; nothing to do"]


def test_changed_raw_data_is_refused_naming_the_file_and_its_sizes(dataset, tmp_path):
    raw, data_dir, stats, _ = dataset
    halved = write_interactions(str(tmp_path / "raw"), event_rows(pad=2)[:16])
    config = csv_config(halved)
    before = stats["raw_files"][0]["size"]
    after = os.path.getsize(os.path.join(halved, "interactions.csv"))
    with pytest.raises(ArtifactError, match=rf"^{data_dir} holds a dataset prepared from other input \(raw file "
                                            rf"interactions.csv {before:,} -> {after:,} bytes\); pass --overwrite"):
        prepare_lib.prepare(config, open_source(config), data_dir)


def test_other_settings_are_refused_naming_the_keys_that_differ(dataset):
    raw, data_dir, _, _ = dataset
    config = csv_config(raw, num_shards=3, seed=7)
    with pytest.raises(ArtifactError, match=r"other input \(num_shards 2 -> 3; seed 0 -> 7\); pass --overwrite"):
        prepare_lib.prepare(config, open_source(config), data_dir)


# --- prepare: data hazards ------------------------------------------------------------------------


def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path):
    raw = write_interactions(str(tmp_path), ["u1,i1,5,1,4"], header=HEADER + ",rating")
    with pytest.raises(BadRecordError, match=r"interactions.csv:1: field 'rating': column appears 2 times in "
                                             r"the header; keep one$"):
        list(open_source(csv_config(raw)).interactions(BadRecordPolicy()))


def test_padded_ids_are_stripped_and_counted(dataset):
    _, _, stats, lines = dataset
    assert stats["ids_stripped"] == 8 and stats["num_users"] == 8  # 2 users x 4 events, not new users
    assert "stripped surrounding spaces from the ids of 8 interactions" in lines


def test_a_dataset_without_positives_is_refused(tmp_path):
    raw = write_interactions(str(tmp_path / "raw"), [row.rsplit(",", 2)[0] + ",1," + row.rsplit(",", 1)[1]
                                                     for row in event_rows()])
    with pytest.raises(DataError, match=r"^csv: the train split has 0 positive and \d+ negative examples: no "
                                        r"positive events \(rating >= 4 under label_rule threshold\)"):
        prepare_dataset(str(tmp_path / "data"), dataset="csv", raw_dir=raw)


def test_a_split_leaving_most_users_cold_start_is_warned_about_with_the_numbers(dataset):
    _, _, stats, lines = dataset
    assert stats["segments"]["cold_start_users"] == 8
    assert ("warning: 8 of 8 users (100%) are cold-start (< 3 train positives) after leave-last-1-out; a smaller "
            "--test_k / --valid_k leaves more of each user's events in train") in lines


def test_a_test_split_larger_than_train_is_warned_about_with_the_numbers():
    splits = {"train": {"examples": 1_093}, "valid": {"examples": 600}, "test": {"examples": 12_717}}
    assert prepare_lib.split_warnings(splits, 300, 100, PrepareConfig()) == [
        "test has 12,717 examples, train 1,093: the model learns from less than it is tested on; lower --test_k "
        "or --eval_negatives"]


def test_output_directories_take_the_mode_the_umask_leaves(dataset, tmp_path):
    _, data_dir, _, _ = dataset
    folders = [data_dir] + [os.path.join(data_dir, name) for name in ("train", "valid", "test", "vocab")]
    assert {oct(os.stat(folder).st_mode & 0o777) for folder in folders} == {oct(0o777 & ~SHARED_UMASK)}


# --- shards are checked against stats.json --------------------------------------------------------


def test_a_truncated_shard_is_named_before_training_and_model_dir_stays_untouched(dataset, tmp_path):
    data_dir = copy_of(dataset[1], tmp_path / "data")
    shard = os.path.join(data_dir, "train", "part-00001-of-00002.tfrecord.gz")
    size = os.path.getsize(shard)
    with open(shard, "r+b") as f:
        f.truncate(size - 10)
    model_dir = str(tmp_path / "model")
    with pytest.raises(ArtifactError, match=rf"^{shard}: {size - 10:,} bytes, stats.json says {size:,} \(truncated "
                                            r"or replaced\); prepare it again \(sllmr-prepare --overwrite\)$"):
        train(TrainConfig(data_dir=data_dir, model_dir=model_dir), log=lambda _: None)
    assert not os.path.exists(model_dir)


# --- pairs dirs: empty, unfinished, of another dataset --------------------------------------------


def write_pairs(pairs_dir: str, fingerprint: str | None, pairs: int = 1, summary: bool = True) -> None:
    """One scorer process's output on a dataset of 2 shards: `pairs` pairs, all in data shard 0."""
    for data_shard in (0, 1):
        with ShardWriter(pair_shard_path(pairs_dir, data_shard, 2)) as writer:
            for _ in range(pairs if data_shard == 0 else 0):
                writer.write(encode_pair({"user_id": 1, "item_a": 1, "item_b": 2, "confidence": 0.9, "margin": 0.5,
                                          "source": 0, "outcome": -1, "true_correct_prob": -1.0,
                                          "true_informed_prob": -1.0}))
    if summary:
        fileio.write_json(summary_path(pairs_dir, 0, 1), {"pairs": {"written": pairs}, "data_shards": [0, 1],
                                                          "num_data_shards": 2, "dataset_fingerprint": fingerprint})


@pytest.mark.parametrize("pairs, summary, fingerprint, message", [
    (0, True, "same", r"{pairs}: the scorer wrote 0 pairs \(see its summary and log\); score again"),
    (1, False, "same", r"{pairs}/pairs-00000-of-00002.tfrecord.gz: no summary lists it \(its scorer has not "
                       r"finished\); run that shard of sllmr-score again"),
    (1, True, "0123456789abcdef", r"{pairs} was made from dataset 0123456789abcdef, but {data} is dataset {own}; "
                                  r"give the data_dir it was made from"),
], ids=["empty", "unfinished", "other-dataset"])
def test_training_refuses_an_unusable_pairs_dir_before_creating_model_dir(dataset, tmp_path, pairs, summary,
                                                                          fingerprint, message):
    data_dir, own = dataset[1], dataset[2]["dataset_fingerprint"]
    pairs_dir, model_dir = str(tmp_path / "pairs"), str(tmp_path / "model")
    write_pairs(pairs_dir, own if fingerprint == "same" else fingerprint, pairs, summary)
    with pytest.raises(ArtifactError, match="^" + message.format(pairs=pairs_dir, data=data_dir, own=own)):
        train(TrainConfig(data_dir=data_dir, model_dir=model_dir, method="sllmr", pairs_dir=pairs_dir),
              log=lambda _: None)
    assert not os.path.exists(model_dir)


# --- model dirs and exports carry the lineage -------------------------------------------------------


def write_run(model_dir: str, config: TrainConfig, fingerprint: str, finished: bool = False) -> None:
    fileio.write_json(artifacts.path(model_dir, artifacts.TRAIN_CONFIG),
                      {**config.to_json(), artifacts.DATASET_FINGERPRINT: fingerprint})
    if finished:
        fileio.write_json(artifacts.path(model_dir, artifacts.METRICS), {
            "backbone": config.backbone, "method": config.method, "seed": config.seed,
            "data_dir": config.data_dir, "pairs_dir": None})


def test_a_model_dir_of_another_dataset_is_refused_by_train_and_eval(dataset, tmp_path):
    data_dir = dataset[1]
    model_dir = str(tmp_path / "model")
    config = TrainConfig(data_dir=data_dir, model_dir=model_dir)
    write_run(model_dir, config, "0123456789abcdef", finished=True)
    expected = (rf"^{model_dir} was made from dataset 0123456789abcdef, but {data_dir} is dataset "
                rf"{dataset[2]['dataset_fingerprint']}; give the data_dir it was made from")
    with pytest.raises(ArtifactError, match=expected):
        train(config, log=lambda _: None)
    with pytest.raises(ArtifactError, match=expected):
        artifacts.check_dataset(model_dir, DatasetDir(data_dir))  # sllmr-eval and sllmr-export's check


def test_the_export_identity_names_the_dataset_fingerprint(dataset, tmp_path):
    model_dir = str(tmp_path / "model")
    write_run(model_dir, TrainConfig(data_dir=dataset[1], model_dir=model_dir), "0123456789abcdef", finished=True)
    assert run_identity(model_dir)["dataset_fingerprint"] == "0123456789abcdef"


# --- scoring without a usable answer fails -----------------------------------------------------------


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        status, body = self.server.reply
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def failing_server(reply: tuple[int, bytes] | None):
    """(base URL, server or None): a local server answering every request with `reply`, or a
    port nobody listens on."""
    if reply is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return f"http://127.0.0.1:{s.getsockname()[1]}/v1", None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    server.reply = reply
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1", server


@pytest.mark.parametrize("reply, last_error", [
    (None, r"URLError: <urlopen error \[Errno 111\] Connection refused>"),
    ((500, b"overloaded"), r"HTTP 500: overloaded"),
    ((200, b"{not json"), r"JSONDecodeError: Expecting property name"),
], ids=["dead-port", "http-500", "broken-json"])
def test_scoring_without_any_usable_answer_fails_with_the_servers_last_error(dataset, tmp_path, reply,
                                                                             last_error):
    data_dir = dataset[1]
    url, server = failing_server(reply)
    backend = openai_backend.create(data_dir, OpenAIConfig(openai_base_url=url, openai_model="m", request_retries=0,
                                                           request_timeout_s=2.0))
    pairs_dir = str(tmp_path / "pairs")
    try:
        with pytest.raises(ScoringAborted, match=r"^none of 3 lists got a usable answer \(3 requests failed, 0 "
                                                 rf"answers unusable\); last: RequestFailed: {url}/chat/completions: "
                                                 rf"{last_error}"):
            pipeline.score(data_dir, backend, pairs_dir, ScoreConfig(max_lists=3, num_orders=1, concurrency=1),
                           log=lambda _: None)
    finally:
        if server:
            server.shutdown()
            server.server_close()
    assert sorted(os.listdir(pairs_dir)) == ["cache", "log-00000-of-00001.jsonl"]  # no pair shard, no summary


def test_the_score_binary_exits_2_with_one_line_when_no_list_is_scored(dataset):
    url, _ = failing_server(None)
    result = subprocess.run(
        [sys.executable, "-m", "sllmr_tf.bins.score", f"--data_dir={dataset[1]}", "--scorer=openai",
         f"--openai_base_url={url}", "--openai_model=m", "--request_retries=0", "--max_lists=2",
         "--num_orders=1", f"--pairs_dir={dataset[1]}.pairs"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("sllmr-score: error: none of 2 lists got a usable answer "
                                                     "(2 requests failed, 0 answers unusable); last: ")
    assert "Connection refused" in result.stderr.splitlines()[-1]


# --- refused writes: one ArtifactError naming the path, nothing partial left ------------------------


def refuse_writes(monkeypatch, root: str, error: Exception) -> None:
    """A filesystem that refuses every file write below `root` with `error` (as a read-only or full
    disk does; chmod cannot show it when the tests run as root). Reads and folders are untouched."""
    import tensorflow as tf

    real_gfile, real_writer = tf.io.gfile.GFile, tf.io.TFRecordWriter

    def refused(path) -> bool:
        return os.path.abspath(str(path)).startswith(root)

    def gfile(path, mode="r"):
        if mode[0] in "wa" and refused(path):
            raise error
        return real_gfile(path, mode)

    def record_writer(path, *args, **kwargs):
        if refused(path):
            raise error
        return real_writer(path, *args, **kwargs)

    monkeypatch.setattr(tf.io.gfile, "GFile", gfile)
    monkeypatch.setattr(tf.io, "TFRecordWriter", record_writer)


def files_below(root) -> list[str]:
    return [os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names]


def permission_denied():
    import tensorflow as tf

    return tf.errors.PermissionDeniedError(None, None, "/x; Permission denied")


REFUSALS = {"read-only": (permission_denied, "permission denied"),
            "full": (lambda: OSError(errno.ENOSPC, "No space left on device"), "no space left on device")}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_prepare_into_a_refusing_directory_fails_in_one_line_and_leaves_nothing(tmp_path, monkeypatch, refusal):
    error, reason = REFUSALS[refusal]
    raw = write_interactions(str(tmp_path / "raw"), event_rows())
    config = csv_config(raw)
    refuse_writes(monkeypatch, str(tmp_path / "out"), error())
    data_dir = str(tmp_path / "out" / "data")
    with pytest.raises(ArtifactError, match=rf"^cannot write {tmp_path / 'out'}/data\.prepare-\S+: {reason}; "
                                            r"give a writable directory with free space( \[while running '\w+'\])?$"):
        prepare_lib.prepare(config, open_source(config), data_dir, log=lambda _: None)
    assert os.listdir(tmp_path / "out") == []


def test_scoring_into_a_refusing_directory_fails_in_one_line_and_leaves_no_file(world, tmp_path, monkeypatch):
    data_dir, pairs_dir = world[0], str(tmp_path / "pairs")
    refuse_writes(monkeypatch, pairs_dir, permission_denied())
    with pytest.raises(ArtifactError, match=rf"^cannot write {pairs_dir}/\S+: permission denied; "):
        pipeline.score(data_dir, make_backend("simulated", data_dir), pairs_dir, log=lambda _: None)
    assert files_below(pairs_dir) == []


def test_training_into_a_full_directory_fails_in_one_line_and_leaves_no_file(dataset, tmp_path, monkeypatch):
    model_dir = str(tmp_path / "model")
    refuse_writes(monkeypatch, model_dir, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(ArtifactError, match=rf"^cannot write {model_dir}/train_config.json: no space left on device; "):
        train(TrainConfig(data_dir=dataset[1], model_dir=model_dir), log=lambda _: None)
    assert files_below(model_dir) == []
