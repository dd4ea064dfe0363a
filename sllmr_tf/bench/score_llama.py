"""Benchmark: lists/s and pairs/s of the `openai` scorer against real llama.cpp servers.

    python -m sllmr_tf.bins.prepare --dataset=movielens100k --data_dir=DIR
    python -m sllmr_tf.bench.score_llama --data_dir=DIR [--concurrency=1,4] [--modes=logprobs,rank]
        [--servers=1,2]

Starts SmolLM2-135M-Instruct under llama-cpp-python's server on 127.0.0.1, as
many servers as the largest --servers entry (or uses --base_url/--model for any
OpenAI-compatible server or comma-separated pool), and runs the real scoring
job (`scoring.pipeline.score`) on the first --max_lists lists, once per
(mode, servers, concurrency), each time with a fresh response cache so every
prompt is asked; a run with n servers uses the pool of the first n. Prints a
Markdown table, a row as soon as it is measured (lists/s counts every list
asked, scored or skipped).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from typing import Sequence

from absl import app, flags

from sllmr_tf.scoring import openai_backend, pipeline
from sllmr_tf.scoring.config import CandidateConfig, OpenAIConfig, ScoreConfig
from sllmr_tf.scoring.llama_server import LlamaServer

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "A prepared dataset (sllmr-prepare).", required=True)
flags.DEFINE_list("concurrency", ["1", "4"], "Requests in flight to time.")
flags.DEFINE_list("modes", ["logprobs", "rank"], "openai scorer modes to time.")
flags.DEFINE_list("servers", ["1"], "Local llama.cpp servers in the pool to time.")
flags.DEFINE_integer("max_in_flight_per_server", 1, "The pool's per-server bound (llama-cpp-python answers "
                     "one request at a time).")
flags.DEFINE_integer("max_lists", 6, "Lists scored per run.")
flags.DEFINE_integer("num_orders", 3, "Orders per list.")
flags.DEFINE_integer("n_threads", 1, "llama.cpp threads of the local server.")
flags.DEFINE_string("base_url", None, "Use this OpenAI-compatible server instead of starting one.")
flags.DEFINE_string("model", None, "Model name for --base_url.")


def run_once(base_url: str, model: str, mode: str, concurrency: int, work: str) -> tuple[dict, float]:
    pairs_dir = os.path.join(work, f"{mode}-c{concurrency}")
    shutil.rmtree(pairs_dir, ignore_errors=True)
    backend = openai_backend.create(FLAGS.data_dir, OpenAIConfig(
        openai_base_url=base_url, openai_model=model, openai_mode=mode, request_timeout_s=600,
        max_in_flight_per_server=FLAGS.max_in_flight_per_server))
    config = ScoreConfig(candidates=CandidateConfig(), num_orders=FLAGS.num_orders,
                         max_lists=FLAGS.max_lists, concurrency=concurrency, progress_every_s=1e9)
    started = time.perf_counter()
    summary = pipeline.score(FLAGS.data_dir, backend, pairs_dir, config, log=lambda _: None)
    return summary, time.perf_counter() - started


def table(pools: dict[int, str], model: str) -> None:
    """Times every (mode, servers, concurrency) and prints each row as soon as it is measured;
    `pools` maps a server count to its comma-separated base URLs."""
    print(f"\n{model}: {FLAGS.max_lists} lists x {FLAGS.num_orders} orders, list size {CandidateConfig().list_size}, "
          f"{FLAGS.max_in_flight_per_server} request(s) in flight per server")
    print("| mode | servers | concurrency | seconds | lists scored | requests | parsed | pairs | lists/s | pairs/s "
          "| s/request |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    work = tempfile.mkdtemp(prefix="sllmr-bench-llama-")
    try:
        for mode in FLAGS.modes:
            for servers, base_url in pools.items():
                for concurrency in (int(c) for c in FLAGS.concurrency):
                    summary, seconds = run_once(base_url, model, mode, concurrency, work)
                    _row(mode, servers, concurrency, summary, seconds)
    finally:
        shutil.rmtree(work)


def _row(mode: str, servers: int, concurrency: int, summary: dict, seconds: float) -> None:
    requests = summary["answers"]["answers_asked"]
    pairs = summary["pairs"]["written"]
    print(f"| {mode} | {servers} | {concurrency} | {seconds:.1f} | {summary['lists']['scored']} | {requests} "
          f"| {summary['answers']['answers_parsed']} | {pairs} | {FLAGS.max_lists / seconds:.3f} "
          f"| {pairs / seconds:.2f} | {seconds / max(requests, 1):.2f} |", flush=True)


def main(argv: Sequence[str]) -> None:
    if FLAGS.base_url:
        table({len(FLAGS.base_url.split(",")): FLAGS.base_url}, FLAGS.model)
        return
    counts = sorted({int(n) for n in FLAGS.servers})
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(LlamaServer(n_threads=FLAGS.n_threads)) for _ in range(counts[-1])]
        table({n: ",".join(server.base_url for server in servers[:n]) for n in counts}, servers[0].model)


if __name__ == "__main__":
    app.run(main)
