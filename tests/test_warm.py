"""The warm start (``judgekit.cli.warm``): the installed ``judgekit`` command, run as a user runs it, against a real
warm server in a folder of each test. A command run in a warm child must be indistinguishable from one run in
its own process: output, exit status, files, API key, working folder, signals."""

from __future__ import annotations

import json
import marshal
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scripted_server import ScriptedServer

from judgekit.cli import warm

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).with_name("judgekit")
pytestmark = [
    pytest.mark.skipif(not (sys.platform.startswith("linux") and hasattr(socket, "send_fds")),
                       reason="warm servers are Linux only"),
    pytest.mark.skipif(not SCRIPT.exists() or "judgekit.cli.warm" not in SCRIPT.read_text(errors="replace"),
                       reason="the installed console script is not judgekit.cli.warm:main (pip install -e . again)"),
]
KEY = "sk-warm-0123456789abcdef"


@pytest.fixture
def folder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh folder for this test's servers (short: a socket path is at most 107 bytes), stopped afterwards."""
    path = Path(tempfile.mkdtemp(prefix="jkw-", dir="/tmp"))
    monkeypatch.setenv(warm.ENV_DIR, str(path))
    monkeypatch.delenv(warm.ENV_SWITCH, raising=False)
    try:
        yield path
    finally:
        warm.stop_servers()  # (a stopped server removes its socket and lock as it ends: maybe while we look)
        shutil.rmtree(path, ignore_errors=True)


def _env(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != warm.ENV_SWITCH}
    return {**env, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_COLOR": "1", warm.ENV_DIR: str(folder),
            warm.ENV_IDLE: "60", **extra}


def _run(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def _server(timeout: float = 30.0) -> dict[str, Any]:
    """The one live server of this test's folder, once it listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = warm.servers()
        if found:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.1)
    raise AssertionError("no warm server started")


def _started(env: dict[str, str]) -> dict[str, Any]:
    """Start a server (a first command runs on its own and starts one) and wait for it."""
    first = _run(["--version"], env)
    assert first.returncode == 0, first.stderr
    return _server()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _responses(path: Path, n: int, script: str = "valid=4") -> None:
    rows = [{"id": f"q{i}", "model": "m", "question": f"Any defect on part {i}?", "reference": "a scratch",
             "category": "screw", "response": f"a scratch {i} [[script:{script}]]"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _judge_args(server: ScriptedServer, store: str, out: str, *more: str) -> list[str]:
    return ["judge", "responses.jsonl", "--rubric", "robustmad", "--judge", "openai/scripted", "--api-base",
            server.base_url, "--api-key-env", "JK_WARM_TEST_CRED", "--store", store, "--out", out, "--no-progress",
            *more]


def _judging_in_background(server: ScriptedServer, env: dict[str, str], cwd: Path, seen: int,
                           wrapper: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    """``judgekit judge`` at 2 in flight, once the judge server has seen ``seen`` requests of it. The command gets
    a process group of its own in this session, as a shell's job control gives it: were its group orphaned (the
    test run's own group may be, under CI), the kernel would discard a Ctrl-Z sent to it, as to any process."""
    proc = subprocess.Popen([*wrapper, str(SCRIPT), *_judge_args(server, "s.sqlite", "out.jsonl", "--concurrency",
                                                                 "2")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                            process_group=0)
    deadline = time.monotonic() + 60
    while len(server.log) < seen and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc


def test_the_next_command_runs_in_a_warm_child_with_the_same_output_and_status(folder: Path) -> None:
    env = _env(folder)
    first = _run(["rubric", "check", "rubrics/robustmad.yaml"], env)
    info = _server()
    assert info["served"] == 0 and first.returncode == 0
    second = _run(["rubric", "check", "rubrics/robustmad.yaml"], env)
    assert (second.returncode, second.stdout, second.stderr) == (first.returncode, first.stdout, first.stderr)
    # argparse's own exits (--version, a usage error) and a bad input: the same status and text as on its own
    for args in (["--version"], ["nonsense"], ["rubric", "check", "missing.yaml"], ["judge", "--help"]):
        alone = _run(args, {**env, warm.ENV_SWITCH: "0"})
        warmed = _run(args, env)
        assert (warmed.returncode, warmed.stdout, warmed.stderr) == (alone.returncode, alone.stdout, alone.stderr)
    assert _server()["served"] == 5


def test_a_judging_run_in_a_warm_child_equals_one_on_its_own(folder: Path, tmp_path: Path) -> None:
    """Relative paths resolve in the command's folder, the API key comes from the command's environment (and
    reaches the judge server, never the warm server's environment), the results and the store are the same."""
    _responses(tmp_path / "responses.jsonl", 12)
    env = _env(folder, JK_WARM_TEST_CRED=KEY)
    info = _started(_env(folder))
    with ScriptedServer(api_key=KEY) as server:
        warmed = _run(_judge_args(server, "w.sqlite", "w.jsonl"), env, cwd=tmp_path)
        alone = _run(_judge_args(server, "a.sqlite", "a.jsonl"), {**env, warm.ENV_SWITCH: "0"}, cwd=tmp_path)
        log = list(server.log)
    assert warmed.returncode == alone.returncode == 0, warmed.stderr + alone.stderr
    assert warm.servers()[0]["served"] == 1
    assert len(log) == 24 and all(entry["auth_ok"] for entry in log)

    def verdicts(name: str) -> list[tuple[Any, ...]]:
        rows = [json.loads(line) for line in (tmp_path / name).read_text(encoding="utf-8").splitlines()]
        return [(r["id"], r["status"], r["scores"], r["overall"], r["passed"]) for r in rows]

    assert verdicts("w.jsonl") == verdicts("a.jsonl") and len(verdicts("w.jsonl")) == 12
    assert warmed.stdout.splitlines()[:-1] == alone.stdout.splitlines()[:-1]  # the last line holds the times
    assert "12 judgments -> w.jsonl" in warmed.stdout
    environ = Path(f"/proc/{info['pid']}/environ").read_bytes()
    assert KEY.encode() not in environ and b"JK_WARM_TEST_CRED" not in environ


def test_ctrl_c_reaches_the_warm_child_and_the_run_resumes_paying_nothing_twice(folder: Path, tmp_path: Path) -> None:
    _responses(tmp_path / "responses.jsonl", 24, "slow=0.4,valid=4")
    env = _env(folder, JK_WARM_TEST_CRED=KEY)
    _started(_env(folder))
    with ScriptedServer(api_key=KEY) as server:
        proc = _judging_in_background(server, env, tmp_path, 6)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        import sqlite3

        with sqlite3.connect(tmp_path / "s.sqlite") as db:
            stored = db.execute("SELECT count(*) FROM calls").fetchone()[0]
        assert 4 <= stored < 24
        before = len(server.log)
        again = _run(_judge_args(server, "s.sqlite", "out.jsonl", "--concurrency", "8"), env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert len(server.log) - before == 24 - stored  # only what the interrupted run did not store


def test_a_command_killed_with_sigkill_takes_its_warm_child_with_it(folder: Path, tmp_path: Path) -> None:
    _responses(tmp_path / "responses.jsonl", 60, "slow=0.5,valid=4")  # ~15 s at 2 in flight
    env = _env(folder, JK_WARM_TEST_CRED=KEY)
    info = _started(_env(folder))
    with ScriptedServer(api_key=KEY) as server:
        proc = _judging_in_background(server, env, tmp_path, 4)
        children = _children(info["pid"])
        assert len(children) == 1
        proc.kill()
        proc.wait(timeout=30)
        deadline = time.monotonic() + 3  # the child is killed at once, long before its run would end
        while Path(f"/proc/{children[0]}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{children[0]}").exists(), "the warm child outlived its command"
        n = len(server.log)
        time.sleep(1.0)
        assert len(server.log) == n
        again = _run(_judge_args(server, "s.sqlite", "out.jsonl", "--concurrency", "16"), env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 60


def test_ctrl_z_stops_the_warm_child_and_fg_resumes_it(folder: Path, tmp_path: Path) -> None:
    _responses(tmp_path / "responses.jsonl", 12, "slow=0.3,valid=4")
    env = _env(folder, JK_WARM_TEST_CRED=KEY)
    info = _started(_env(folder))
    with ScriptedServer(api_key=KEY) as server:
        proc = _judging_in_background(server, env, tmp_path, 2)
        (child,) = _children(info["pid"])
        proc.send_signal(signal.SIGTSTP)
        deadline = time.monotonic() + 10
        while (_proc_state(child), _proc_state(proc.pid)) != ("T", "T") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (_proc_state(child), _proc_state(proc.pid)) == ("T", "T")
        proc.send_signal(signal.SIGCONT)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 12


def test_a_server_whose_state_differs_refuses_and_ends(folder: Path) -> None:
    """A request from a process in another state (another environment, interpreter or judgekit's code) is refused
    with S, and the server ends (the command then runs on its own and starts a server for its state)."""
    info = _started(_env(folder))
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(info["socket"])
    body = marshal.dumps({"state": "another state", "argv": ["--version"]})
    socket.send_fds(conn, [warm._HEADER.pack(b"R", len(body)) + body], [0, 1, 2])
    kind, _ = warm._REPLY.unpack(warm._recv_exact(conn, warm._REPLY.size))
    conn.close()
    assert kind == b"S"
    deadline = time.monotonic() + 10
    while Path(info["socket"]).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(info["socket"]).exists()


def test_another_environment_gets_its_own_server(folder: Path) -> None:
    _started(_env(folder))
    other = _env(folder, PYTHONWARNINGS="ignore::DeprecationWarning")
    assert _run(["--version"], other).returncode == 0
    deadline = time.monotonic() + 30
    while len(warm.servers()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(warm.servers()) == 2


def test_no_server_when_switched_off_or_in_an_unsafe_folder(folder: Path) -> None:
    off = _run(["--version"], _env(folder, **{warm.ENV_SWITCH: "0"}))
    unsafe = folder / "open"
    unsafe.mkdir(mode=0o755)
    unsafe.chmod(0o755)
    shared = _run(["--version"], _env(unsafe))
    assert off.returncode == shared.returncode == 0 and off.stdout == shared.stdout == "judgekit 0.1.0\n"
    time.sleep(3)
    assert [p.name for p in folder.iterdir()] == ["open"] and list(unsafe.iterdir()) == []
    unsafe.rmdir()


def test_an_idle_server_ends_and_status_and_stop_report(folder: Path) -> None:
    _started(_env(folder, **{warm.ENV_IDLE: "1.5"}))
    deadline = time.monotonic() + 20
    while warm.servers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert warm.servers() == []
    env = _env(folder)
    _started(env)
    status = _run(["server", "status"], env)
    assert status.returncode == 0 and "1 commands" not in status.stdout and "current" in status.stdout
    assert _run(["server", "stop"], env).stdout == "1 server stopped\n"
    assert _run(["server", "status"], env).stdout.startswith("no warm server in ")


def test_a_command_that_ends_with_the_interpreters_shutdown_reports_its_status(folder: Path, tmp_path: Path) -> None:
    """Through litellm (whose logging workers finish at exit) the warm child ends with the interpreter's normal
    shutdown rather than ``os._exit``: its exit status still reaches the command, after everything is written."""
    _responses(tmp_path / "responses.jsonl", 3)
    env = _env(folder, JK_WARM_TEST_CRED=KEY)
    _started(_env(folder))
    with ScriptedServer(api_key=KEY) as server:
        done = _run(_judge_args(server, "s.sqlite", "out.jsonl", "--backend", "litellm"), env, cwd=tmp_path)
        bad = _run(_judge_args(server, "s2.sqlite", "out2.jsonl", "--backend", "litellm", "--max-cost", "-1"), env,
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "3 judgments -> out.jsonl" in done.stdout
    assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 3
    assert bad.returncode == 2 and "--max-cost" in bad.stderr and not (tmp_path / "out2.jsonl").exists()
    assert warm.servers()[0]["served"] == 2


def test_a_child_takes_the_commands_time_zone_folder_and_umask(tmp_path: Path) -> None:
    """``_become`` (what a warm child does before the command): the command's environment replaces the server's
    (its TZ is in effect for local times), with its working folder and umask."""
    probe = ("import json, os, sys, time\nfrom judgekit.cli import warm\n"
             "req = {'cwd': sys.argv[1], 'umask': 0o027, 'env': {'TZ': 'Asia/Kolkata', 'ONLY_HERE': '1'},"
             " 'limits': warm._limits(), 'nice': os.getpriority(os.PRIO_PROCESS, 0),"
             " 'cpus': sorted(os.sched_getaffinity(0))}\n"
             "ok = warm._become(req)\nmask = os.umask(0)\n"
             "print(json.dumps({'ok': ok, 'cwd': os.getcwd(), 'umask': mask, 'offset': time.localtime(0).tm_gmtoff,"
             " 'env': sorted(os.environ)}))")
    env = {**os.environ, "TZ": "UTC"}
    r = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got == {"ok": True, "cwd": str(tmp_path), "umask": 0o027, "offset": 19800,
                   "env": ["LITELLM_LOCAL_MODEL_COST_MAP", "ONLY_HERE", "TZ"]}


def test_a_signal_the_command_ignores_is_ignored_by_its_warm_child(folder: Path, tmp_path: Path) -> None:
    """Under ``nohup`` (HUP ignored) a hang-up neither ends the command nor its child, as for a command on its own;
    TERM, not ignored, still ends both."""
    _responses(tmp_path / "responses.jsonl", 12, "slow=0.3,valid=4")
    env = _env(folder, JK_WARM_TEST_CRED=KEY)
    info = _started(_env(folder))
    with ScriptedServer(api_key=KEY) as server:
        proc = _judging_in_background(server, env, tmp_path, 2, wrapper=("nohup",))
        (child,) = _children(info["pid"])
        proc.send_signal(signal.SIGHUP)
        os.kill(child, signal.SIGHUP)  # a hang-up of the terminal reaches every process of it
        time.sleep(0.5)
        assert proc.poll() is None and Path(f"/proc/{child}").exists()
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 12
