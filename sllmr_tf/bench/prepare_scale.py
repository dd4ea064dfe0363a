"""Benchmark: wall time and peak memory of sllmr-prepare at 1x, 10x and 100x MovieLens-100k,
the Beam pipeline beside the in-process prepare it replaced.

    python -m sllmr_tf.bench.prepare_scale [--scales=1,10,100] [--work_dir=DIR]
                                           [--baseline=063d66e] [--baseline_max_scale=10]

Copy k of the bundled MovieLens-100k gets its own user and item ids (user 7 of
copy 3 is `r3_7`), so the data really grows: users, items and interactions
scale together. Each copy set is a `csv` source; every run is its own
sllmr-prepare process with the default experiment's flags
(flags/prepare_movielens100k.flags) and 4 shards per copy, so a shard keeps its
size. Memory is the peak, over the run, of the summed RSS of the process and
all its descendants (the local runner's workers too), and of their summed PSS,
which splits shared pages (TensorFlow's libraries) between the processes that
map them; both are polled from /proc every 0.1 s. CPU is user + system time of
the process and its waited-for children.

The baseline is the in-process prepare of commit --baseline, exported with
`git archive` (no worktree is registered); it needs about 330 MB per 100k
interactions, so it runs only up to --baseline_max_scale. The first row, `demo`,
is the `make demo` prepare step itself (the bundled files, the default flags).
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from typing import Sequence

from absl import app, flags

from sllmr_tf.data.readers.movielens import MovieLens100k
from sllmr_tf.data.records import BadRecordPolicy

FLAGS = flags.FLAGS
flags.DEFINE_list("scales", ["1", "10", "100"], "Copies of MovieLens-100k to prepare.")
flags.DEFINE_string("work_dir", None, "Where data and datasets go (default: a new temporary folder).")
flags.DEFINE_string("baseline", "063d66e", "Commit of the in-process prepare to compare with.")
flags.DEFINE_integer("baseline_max_scale", 10, "Largest scale the baseline runs at (it holds everything in memory).")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGFILE = os.path.join(REPO, "flags", "prepare_movielens100k.flags")
SHARDS_PER_COPY = 4
MODES = {  # name -> (code location, extra flags)
    "baseline (in process)": ("baseline", ()),
    "beam, in process": ("repo", ()),
    "beam, worker per core": ("repo", ("--direct_num_workers=0",)),
}


def write_copies(raw_dir: str, copies: int) -> int:
    """interactions.csv and items.csv holding `copies` copies of MovieLens-100k; returns rows."""
    os.makedirs(raw_dir, exist_ok=True)
    source, policy = MovieLens100k(), BadRecordPolicy()
    events, items = list(source.interactions(policy)), list(source.items(policy))
    with open(os.path.join(raw_dir, "interactions.csv"), "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["user_id", "item_id", "rating", "timestamp"])
        for k in range(copies):
            out.writerows([f"r{k}_{e.user}", f"r{k}_{e.item}", e.rating, e.timestamp] for e in events)
    with open(os.path.join(raw_dir, "items.csv"), "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["item_id", "title", "category", "brand", "text"])
        for k in range(copies):
            out.writerows([f"r{k}_{i.item}", i.title, i.category, i.brand, i.description] for i in items)
    return copies * len(events)


def export_baseline(commit: str, folder: str) -> str:
    """The package at `commit`, as files (git archive), for PYTHONPATH."""
    archive = os.path.join(folder, "baseline.tar")
    subprocess.run(["git", "-C", REPO, "archive", "--format=tar", "-o", archive, commit, "sllmr_tf", "flags"],
                   check=True)
    target = os.path.join(folder, "baseline")
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


class TreeMemory(threading.Thread):
    """Polls the peak summed RSS and PSS (bytes) of a process and all its descendants."""

    def __init__(self, pid: int, every_s: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.peak_rss = self.peak_pss = self.processes = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            tree = self._tree()
            rss = sum(_proc_kb(p, "status", "VmRSS:") for p in tree)
            pss = sum(_proc_kb(p, "smaps_rollup", "Pss:") for p in tree)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss * 1024), max(self.peak_pss, pss * 1024)
            self.processes = max(self.processes, len(tree))
            self.done.wait(self.every_s)

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat") as f:
                        parent = int(f.read().rsplit(")", 1)[1].split()[1])
                except (FileNotFoundError, ProcessLookupError):  # exited while listed
                    continue
                children.setdefault(parent, []).append(int(name))
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += children.get(pid, [])
        return tree


def _proc_kb(pid: int, file: str, field: str) -> int:
    try:
        with open(f"/proc/{pid}/{file}") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):  # exited while polled
        pass
    return 0


def measure(args: list[str], pythonpath: str, log_path: str) -> dict:
    """Run sllmr-prepare with `args` from the code at `pythonpath`; its wall time, CPU and peak memory."""
    env = {**os.environ, "PYTHONPATH": pythonpath}
    started = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "sllmr_tf.bins.prepare", *args], env=env, cwd=pythonpath,
                                   stdout=log, stderr=subprocess.STDOUT)
        memory = TreeMemory(process.pid)
        memory.start()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    memory.done.set()
    memory.join()
    if process.returncode:
        raise RuntimeError(f"prepare failed ({process.returncode}); see {log_path}")
    return {"wall": time.perf_counter() - started, "cpu": usage.ru_utime + usage.ru_stime,
            "rss": memory.peak_rss, "pss": memory.peak_pss, "processes": memory.processes}


def main(argv: Sequence[str]) -> None:
    work = FLAGS.work_dir or tempfile.mkdtemp(prefix="sllmr-prepare-scale-")
    os.makedirs(work, exist_ok=True)
    code = {"repo": REPO, "baseline": export_baseline(FLAGS.baseline, work)}
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; work dir {work}")
    rows = []
    inputs = [("demo", 1, ["--flagfile=" + FLAGFILE])]
    for scale in map(int, FLAGS.scales):
        raw = os.path.join(work, f"raw_x{scale}")
        write_copies(raw, scale)
        inputs.append((f"{scale}x", scale, ["--flagfile=" + FLAGFILE, "--dataset=csv", f"--raw_dir={raw}",
                                            f"--num_shards={SHARDS_PER_COPY * scale}"]))
    for label, scale, args in inputs:
        for number, (mode, (where, extra)) in enumerate(MODES.items()):
            if where == "baseline" and scale > FLAGS.baseline_max_scale:
                rows.append((label, scale, mode, None))
                continue
            if label == "demo" and extra:
                continue
            out = os.path.join(work, f"{label}-{number}")
            result = measure([*args, f"--data_dir={out}", *extra], code[where], out + ".log")
            rows.append((label, scale, mode, result))
            print(f"  {label:>5} {mode:<22} {result['wall']:8.1f} s", flush=True)
            subprocess.run(["rm", "-rf", out], check=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    print("\n| input | interactions | prepare | wall s | CPU s | s per 100k | peak RSS, all processes | peak PSS | processes |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for label, scale, mode, r in rows:
        if r is None:
            print(f"| {label} | {scale * 100_000:,} | {mode} | not run: needs ~{scale * 0.33:.0f} GB | | | | | |")
            continue
        print(f"| {label} | {scale * 100_000:,} | {mode} | {r['wall']:.1f} | {r['cpu']:.1f} | "
              f"{r['wall'] / scale:.1f} | {r['rss'] / 2**30:.2f} GiB | {r['pss'] / 2**30:.2f} GiB | {r['processes']} |")


if __name__ == "__main__":
    app.run(main)
