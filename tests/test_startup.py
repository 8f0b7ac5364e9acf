"""What the ``judgekit`` command loads (issue 17): start-up commands load no heavy package, a judging run on the
lean path loads neither numpy nor scipy (its summary's Wilson intervals are written out with the standard
library) nor aiohttp, and the command's output is complete when it exits without the interpreter's teardown. Structural
checks only: the timings belong to ``bench/bench_runner.py`` (phases D-F)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from scripted_server import ScriptedServer

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "scipy", "pandas", "pyarrow", "litellm", "torch", "transformers", "ray")


def _env() -> dict[str, str]:
    return {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_COLOR": "1"}


def _loaded_after(argv: list[str], modules: tuple[str, ...]) -> tuple[int, list[str], str]:
    """Run ``judgekit.cli._main(argv)`` in a fresh interpreter; its exit code and which of ``modules`` it loaded."""
    probe = ("import json, sys\nfrom judgekit.cli import _main\ntry:\n    code = _main(json.loads(sys.argv[1]))\n"
             "except SystemExit as e:\n    code = e.code\n"
             "print('LOADED', json.dumps(sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)))\n"
             "sys.exit(code)")
    r = subprocess.run([sys.executable, "-c", probe, json.dumps(argv), json.dumps(modules)], capture_output=True,
                       text=True, env=_env(), timeout=120, cwd=ROOT)
    line = next(x for x in r.stdout.splitlines() if x.startswith("LOADED "))
    return r.returncode, json.loads(line.removeprefix("LOADED ")), r.stderr


def test_help_loads_nothing_heavy() -> None:
    code, loaded, err = _loaded_after(["--help"], (*HEAVY, "pydantic", "yaml", "rich", "aiohttp", "sqlite3"))
    assert code == 0, err
    assert loaded == []


def test_rubric_check_loads_only_what_a_rubric_needs() -> None:
    code, loaded, err = _loaded_after(["rubric", "check", "rubrics/robustmad.yaml"], (*HEAVY, "aiohttp", "pint"))
    assert code == 0, err
    assert loaded == []
    # a rubric with a numeric fact check validates its units with pint (which brings numpy): only then
    code, loaded, err = _loaded_after(["rubric", "check", "rubrics/forge.yaml"], ("pint", "litellm", "aiohttp"))
    assert code == 0, err
    assert loaded == ["pint"]


def test_a_lean_judging_run_and_its_summary_load_neither_numpy_nor_scipy(tmp_path: Path) -> None:
    rows = [{"id": f"q{i}", "model": "m", "question": "Any defect?", "reference": "a scratch", "category": "screw",
             "response": f"a scratch {i} [[script:valid=4]]"} for i in range(12)]
    src = tmp_path / "responses.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with ScriptedServer() as server:
        code, loaded, err = _loaded_after(
            ["judge", str(src), "--rubric", "robustmad", "--judge", "openai/scripted", "--api-base",
             server.base_url, "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "out.jsonl"),
             "--no-progress"], (*HEAVY, "aiohttp"))
    assert code == 0, err
    assert loaded == []  # the lean path speaks HTTP through judgekit.judging.backends.http, not aiohttp
    assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 12


def test_the_console_script_exits_fast_with_everything_written(tmp_path: Path) -> None:
    """``judgekit judge`` as installed ends with os._exit once its work is done: the results file, the store and
    the printed summary must all be complete at that point."""
    script = Path(sys.executable).with_name("judgekit")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "judgekit.cli"]
    rows = [{"id": f"q{i}", "model": "m", "question": "Any defect?", "reference": "a scratch",
             "response": f"answer {i} [[script:valid=3]]"} for i in range(40)]
    src = tmp_path / "responses.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with ScriptedServer() as server:
        r = subprocess.run([*cmd, "judge", str(src), "--rubric", "robustmad", "--judge", "openai/scripted",
                            "--api-base", server.base_url, "--store", str(tmp_path / "s.sqlite"), "--out",
                            str(tmp_path / "out.jsonl"), "--no-progress"], capture_output=True, text=True,
                           env=_env(), timeout=120)
        requests = len(server.log)
    assert r.returncode == 0, r.stderr
    assert "40 judgments ->" in r.stdout and r.stdout.endswith("\n")
    assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 40
    import sqlite3

    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        assert db.execute("SELECT count(*) FROM calls").fetchone()[0] == 40 == requests


def _plugin_probe(env_value: str | None) -> dict[str, object]:
    """In a fresh interpreter: :func:`judgekit.cli._skip_pydantic_plugin_loader` under ``env_value``, then a model
    built and used; whether ``importlib.metadata`` was loaded, what ``get_plugins`` returned, the validation."""
    probe = ("import json, os, sys\nfrom judgekit.cli import _skip_pydantic_plugin_loader\n"
             "_skip_pydantic_plugin_loader()\nfrom pydantic import BaseModel, ValidationError\n"
             "class M(BaseModel):\n    x: int\n"
             "from pydantic.plugin._loader import get_plugins\n"
             "try:\n    M(x='no')\n    refused = False\nexcept ValidationError:\n    refused = True\n"
             "print(json.dumps({'metadata': 'importlib.metadata' in sys.modules, 'plugins': list(get_plugins()),"
             " 'x': M(x='3').x, 'refused': refused}))")
    env = {k: v for k, v in _env().items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if env_value is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = env_value
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_disabled_pydantic_plugins_skip_the_plugin_loader() -> None:
    """With every plugin disabled (what the console script sets), pydantic's plugin loader, which imports
    ``importlib.metadata`` at its top, is stood in for: models still build and validate, no plugin is
    returned. With plugins allowed (the variable empty or unset), pydantic's own loader runs."""
    for value in ("__all__", "1", "true"):
        assert _plugin_probe(value) == {"metadata": False, "plugins": [], "x": 3, "refused": True}
    for value in ("", None):
        got = _plugin_probe(value)
        assert got["metadata"] is True and got["x"] == 3 and got["refused"] is True
