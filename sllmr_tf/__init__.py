"""sllmr-tf: Selective LLM-Guided Regularization for TensorFlow recommenders.

This is the one place the package configures TensorFlow and Apache Beam, before
either is first imported (every module is imported through this file):

- TensorFlow Recommenders needs Keras 2, so the training stack runs on
  `tf_keras` (TF_USE_LEGACY_KERAS=1).
- Quiet by default: TensorFlow's C++ logs (level 3) and the lines its shared
  libraries print while they load, before its logging is set up ("All log
  messages before absl::InitializeLog()", cuda stubs on a CPU machine), which
  users read as failures; and Apache Beam's import-time warning about
  BigQuery client libraries ("apitools not found"), logged on the root
  logger, which also calls `logging.basicConfig` when nothing configured
  logging yet, so that every later log record of any library is printed.
  SLLMR_TF_LOGS=1 (or a binary's --verbosity flag) brings them back.
  Python warnings stay visible.
"""
import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
LOGS_VARIABLE = "SLLMR_TF_LOGS"


def tensorflow_logs_wanted() -> bool:
    return os.environ.get(LOGS_VARIABLE, "") not in ("", "0")


@contextlib.contextmanager
def _stderr_silenced():
    """Send file descriptor 2 to /dev/null (C++ code writes there, past sys.stderr)."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


@contextlib.contextmanager
def _root_logger_silenced():
    """Drop root-logger records below ERROR, and give the root logger a handler so that a
    module-level `logging.warning` does not call `logging.basicConfig`."""
    root = logging.getLogger()
    handler, level = logging.NullHandler(), root.level
    root.addHandler(handler)
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Loads one package inside `silenced()`, unless its logs are wanted then."""

    def __init__(self, package: str, silenced):
        self.package, self.silenced = package, silenced

    def find_spec(self, name, path, target=None):
        if name != self.package:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or tensorflow_logs_wanted():
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            with self.silenced():
                load(module)

        spec.loader.exec_module = exec_module
        return spec


if not tensorflow_logs_wanted():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for _package, _silenced in (("tensorflow", _stderr_silenced), ("apache_beam", _root_logger_silenced)):
        if _package not in sys.modules:
            sys.meta_path.insert(0, _QuietImport(_package, _silenced))

__version__ = "0.1.0"
