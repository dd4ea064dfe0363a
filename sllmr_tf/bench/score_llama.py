"""Benchmark: lists/s and pairs/s of the `openai` scorer against a real llama.cpp server.

    python -m sllmr_tf.bins.prepare --dataset=movielens100k --data_dir=DIR
    python -m sllmr_tf.bench.score_llama --data_dir=DIR [--concurrency=1,4] [--modes=logprobs,rank]

Starts SmolLM2-135M-Instruct under llama-cpp-python's server on 127.0.0.1 (or
uses --base_url/--model for any OpenAI-compatible server) and runs the real
scoring job (`scoring.pipeline.score`) on the first --max_lists lists, once per
(mode, concurrency), each time with a fresh response cache so every prompt is
asked. Prints a Markdown table, a row as soon as it is measured (lists/s counts
every list asked, scored or skipped).
"""
from __future__ import annotations

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
flags.DEFINE_integer("max_lists", 6, "Lists scored per run.")
flags.DEFINE_integer("num_orders", 3, "Orders per list.")
flags.DEFINE_integer("n_threads", 1, "llama.cpp threads of the local server.")
flags.DEFINE_string("base_url", None, "Use this OpenAI-compatible server instead of starting one.")
flags.DEFINE_string("model", None, "Model name for --base_url.")


def run_once(base_url: str, model: str, mode: str, concurrency: int, work: str) -> tuple[dict, float]:
    pairs_dir = os.path.join(work, f"{mode}-c{concurrency}")
    shutil.rmtree(pairs_dir, ignore_errors=True)
    backend = openai_backend.create(FLAGS.data_dir, OpenAIConfig(openai_base_url=base_url, openai_model=model,
                                                                 openai_mode=mode, request_timeout_s=600))
    config = ScoreConfig(candidates=CandidateConfig(), num_orders=FLAGS.num_orders,
                         max_lists=FLAGS.max_lists, concurrency=concurrency, progress_every_s=1e9)
    started = time.perf_counter()
    summary = pipeline.score(FLAGS.data_dir, backend, pairs_dir, config, log=lambda _: None)
    return summary, time.perf_counter() - started


def table(base_url: str, model: str) -> None:
    """Times every (mode, concurrency) and prints each row as soon as it is measured."""
    print(f"\n{model}: {FLAGS.max_lists} lists x {FLAGS.num_orders} orders, list size {CandidateConfig().list_size}")
    print("| mode | concurrency | seconds | lists scored | requests | parsed | pairs | lists/s | pairs/s | s/request |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    work = tempfile.mkdtemp(prefix="sllmr-bench-llama-")
    try:
        for mode in FLAGS.modes:
            for concurrency in (int(c) for c in FLAGS.concurrency):
                summary, seconds = run_once(base_url, model, mode, concurrency, work)
                requests = summary["answers"]["answers_asked"]
                pairs = summary["pairs"]["written"]
                print(f"| {mode} | {concurrency} | {seconds:.1f} | {summary['lists']['scored']} | {requests} "
                      f"| {summary['answers']['answers_parsed']} | {pairs} | {FLAGS.max_lists / seconds:.3f} "
                      f"| {pairs / seconds:.2f} | {seconds / max(requests, 1):.2f} |", flush=True)
    finally:
        shutil.rmtree(work)


def main(argv: Sequence[str]) -> None:
    if FLAGS.base_url:
        table(FLAGS.base_url, FLAGS.model)
    else:
        with LlamaServer(n_threads=FLAGS.n_threads) as server:
            table(server.base_url, server.model)


if __name__ == "__main__":
    app.run(main)
