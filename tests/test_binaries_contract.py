"""What every binary promises: its help shows its own flags with the config's defaults, a user
error is one line and exit 2, a bug keeps its traceback and exits 1."""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time

import pytest

from sllmr_tf import options
from sllmr_tf.data.config import PrepareConfig, RunnerConfig
from sllmr_tf.experiments.config import PER_RUN, ExperimentConfig
from sllmr_tf.export.config import ExportConfig
from sllmr_tf.scoring.config import OpenAIConfig, ScoreConfig
from sllmr_tf.training.config import EvalConfig, TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# binary -> the config dataclasses its flags come from (and the fields it sets itself)
BINARIES = {
    "prepare": [(PrepareConfig, ()), (RunnerConfig, ())],
    "score": [(ScoreConfig, ()), (OpenAIConfig, ())],
    "train": [(TrainConfig, ())],
    "eval": [(EvalConfig, ())],
    "experiment": [(ExperimentConfig, ()), (TrainConfig, PER_RUN)],
    "export": [(ExportConfig, ())],
}


def run(binary: str, *args: str, code: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", f"sllmr_tf.bins.{binary}"]
    return subprocess.run([*command, *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def flag_defaults(help_text: str) -> dict[str, str | None]:
    """{flag: default as absl prints it, or None when it has none} from --help output."""
    defaults, current = {}, None
    for line in help_text.splitlines():
        start = re.match(r"^  --(?:\[no\])?(\w+):", line)
        if start:
            current = start.group(1)
            defaults[current] = None
        default = re.match(r"^    \(default: '(.*)'\)$", line)
        if default and current:
            defaults[current] = default.group(1)
    return defaults


def printed(value) -> str | None:
    """A dataclass default as absl prints a flag's default."""
    if value is None or value is dataclasses.MISSING:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def option_fields(config_cls: type, exclude: tuple[str, ...]):
    for field in dataclasses.fields(config_cls):
        if dataclasses.is_dataclass(field.default):  # a nested config: its fields are flags too
            yield from option_fields(type(field.default), exclude)
        elif options.is_option(field) and field.name not in exclude:
            yield field


@pytest.mark.parametrize("binary", sorted(BINARIES))
def test_help_lists_the_binarys_own_flags_with_the_config_defaults_without_loading_tensorflow(binary):
    started = time.perf_counter()
    shown = run(binary, "--help")
    seconds = time.perf_counter() - started
    assert shown.returncode == 0, shown.stderr
    full = run(binary, "--helpfull")
    assert full.returncode == 0, full.stderr
    for text in (shown.stdout, full.stdout):
        defaults = flag_defaults(text)
        for config_cls, exclude in BINARIES[binary]:
            for field in option_fields(config_cls, exclude):
                assert field.name in defaults, f"--{field.name} missing from sllmr-{binary} help"
                assert defaults[field.name] == printed(field.default), field.name
    assert "--only_check_args" not in shown.stdout and not re.search(r"--\w*tpu", shown.stdout)  # ours only
    print(f"sllmr-{binary} --help: {seconds:.2f} s")
    probe = run(binary, "--help", code=f"import sys; import sllmr_tf.bins.{binary} as b; "
                                       "print('tensorflow' in sys.modules)")
    assert probe.stdout.strip() == "False"  # importing the binary did not import TensorFlow


@pytest.mark.parametrize("flag", ["--backbone=nonsense", "--epochs=many", "--mlp_units=200,x"])
def test_a_bad_flag_value_is_a_one_line_error_with_exit_2(flag, tmp_path):
    result = run("train", f"--data_dir={tmp_path}", f"--model_dir={tmp_path / 'm'}", flag)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sllmr-train: error: ")
    assert flag.split("=")[0].lstrip("-") in lines[0]


def test_a_missing_required_flag_is_a_one_line_error(tmp_path):
    result = run("eval", f"--model_dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("sllmr-eval: error: ")
    assert "data_dir" in result.stderr


def test_a_user_error_is_one_line_and_exit_2(tmp_path):
    result = run("eval", f"--model_dir={tmp_path / 'none'}", f"--data_dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"sllmr-eval: error: {tmp_path}: not a prepared dataset (no stats.json); run sllmr-prepare first"]


def test_a_bug_inside_a_binary_shows_its_traceback_and_exits_1(tmp_path):
    bug = ("from sllmr_tf.bins import eval as binary\n"
           "def main(argv):\n"
           "    {'test': {}}['test']['overall']\n"
           "binary.main = main\n"
           "binary.run()\n")
    result = run("eval", f"--model_dir={tmp_path}", f"--data_dir={tmp_path}", code=bug)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "KeyError: 'overall'"
    assert "error: 'overall'" not in result.stderr


def test_the_experiment_binary_takes_every_training_flagfile(tmp_path):
    result = run("experiment", f"--flagfile={REPO}/flags/train_protocol.flags", f"--data_dir={tmp_path}",
                 f"--work_dir={tmp_path / 'exp'}", "--methods=base", "--seeds=1")
    assert result.returncode == 2, result.stderr
    assert "not a prepared dataset" in result.stderr.strip().splitlines()[-1]
