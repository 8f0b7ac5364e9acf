"""Self-tests of the scripted fault-injection server (plain aiohttp client, no judgekit)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from scripted_server import DEFAULT_CRITERIA, ScriptedServer, key_for

Reply = tuple[int, dict[str, str], Any]


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


def body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "judge", "messages": [{"role": "system", "content": "You are a judge."},
                                           {"role": "user", "content": text}], **extra}


async def _post_many(url: str, bodies: list[dict[str, Any]]) -> list[Reply | Exception]:
    out: list[Reply | Exception] = []
    async with aiohttp.ClientSession() as s:
        for b in bodies:
            try:
                async with s.post(url + "/chat/completions", json=b) as r:
                    out.append((r.status, dict(r.headers), await r.json(content_type=None)))
            except aiohttp.ClientError as exc:
                out.append(exc)
    return out


def post(url: str, *bodies: dict[str, Any]) -> list[Reply | Exception]:
    return asyncio.run(_post_many(url, list(bodies)))


def content(reply: Reply | Exception) -> str:
    assert not isinstance(reply, Exception), reply
    assert reply[0] == 200, reply
    return reply[2]["choices"][0]["message"]["content"]


def test_valid_reply_structure(server: ScriptedServer) -> None:
    text = "Judge this answer: forty two"
    (status, _, data), = post(server.base_url, body(text, temperature=0, seed=7))
    assert status == 200
    assert data["object"] == "chat.completion" and data["model"] == "judge"
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    obj = json.loads(choice["message"]["content"])
    assert obj == {**dict.fromkeys(DEFAULT_CRITERIA, 4), "rationale": "scripted"}
    usage = data["usage"]
    assert usage["prompt_tokens"] == 4 + 5
    assert usage["completion_tokens"] == len(choice["message"]["content"].split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    entry = [e for e in server.log if e["key"] == key_for(text)][-1]
    assert entry["temperature"] == 0 and entry["seed"] == 7 and entry["n_messages"] == 2
    assert entry["status"] == 200 and not entry["has_response_format"]


def test_429_then_success(server: ScriptedServer) -> None:
    text = "item 1 [[script:429x1,valid=2]]"
    first, second = post(server.base_url, body(text), body(text))
    assert not isinstance(first, Exception)
    assert first[0] == 429 and first[1]["Retry-After"] == "0" and "error" in first[2]
    assert json.loads(content(second))["overall"] == 2
    assert server.count(text) == 2


def test_reply_styles(server: ScriptedServer) -> None:
    replies = post(server.base_url, *(body(f"s [[script:{n}]]") for n in
                                      ("malformed", "fenced", "prose", "out_of_range", "missing", "float")))
    malformed, fenced, prose, oor, missing, flt = map(content, replies)
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed)
    assert malformed.startswith('{"technical_accuracy": 4')
    assert "```json\n{" in fenced and not fenced.startswith("```")
    assert prose.startswith("Here is my assessment: {") and prose.endswith("} Hope this helps.")
    assert json.loads(oor)["technical_accuracy"] == 7
    assert "technical_accuracy" not in json.loads(missing)
    assert json.loads(flt)["technical_accuracy"] == 3.5


def test_malformed_then_valid_reask_shares_key(server: ScriptedServer) -> None:
    text = "item 2 [[script:malformed_then_valid]]"
    reask = body(text)
    reask["messages"] += [{"role": "assistant", "content": "{bad"}, {"role": "user", "content": "Fix it."}]
    first, second = post(server.base_url, body(text), reask)
    with pytest.raises(json.JSONDecodeError):
        json.loads(content(first))
    assert json.loads(content(second))["overall"] == 4
    assert server.counts[key_for(text)] == 2


def test_drop_then_success(server: ScriptedServer) -> None:
    text = "item 3 [[script:dropx1]]"
    first, second = post(server.base_url, body(text), body(text))
    assert isinstance(first, aiohttp.ClientConnectionError)
    assert json.loads(content(second))["relevance"] == 4


def test_schema_and_criteria_directive(server: ScriptedServer) -> None:
    schema = {"type": "object", "properties": {
        "accuracy": {"type": "integer", "minimum": 0, "maximum": 10},
        "clarity": {"type": "integer", "minimum": 0, "maximum": 10},
        "rationale": {"type": "string"}}}
    rf = {"type": "json_schema", "json_schema": {"name": "scores", "schema": schema, "strict": True}}
    parts = [{"type": "text", "text": "item 4 [[script:out_of_range]]"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    by_schema = body("x", response_format=rf)
    by_schema["messages"][1]["content"] = parts
    by_directive = body("item 5 [[criteria:alpha,beta]] [[script:valid=1]]")
    a, b = map(content, post(server.base_url, by_schema, by_directive))
    assert json.loads(a) == {"accuracy": 11, "clarity": 4, "rationale": "scripted"}
    assert json.loads(b) == {"alpha": 1, "beta": 1, "rationale": "scripted"}
    entry = [e for e in server.log if e["first_user_text"].startswith("item 4")][-1]
    assert entry["image_parts"] == 1 and entry["has_response_format"]


def test_unknown_token_and_always(server: ScriptedServer) -> None:
    bad, always = post(server.base_url, body("[[script:valdi]]"), body("[[script:always500]]"))
    assert not isinstance(bad, Exception) and bad[0] == 400
    assert not isinstance(always, Exception) and always[0] == 500


def test_concurrency(server: ScriptedServer) -> None:
    async def run() -> list[int]:
        conn = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=conn) as s:
            async def one(i: int) -> int:
                b = body(f"conc {i} [[script:slow=0.3]]")
                async with s.post(server.base_url + "/chat/completions", json=b) as r:
                    await r.read()
                    return r.status
            return await asyncio.gather(*(one(i) for i in range(128)))

    t0 = time.monotonic()
    assert asyncio.run(run()) == [200] * 128
    assert time.monotonic() - t0 < 3.0


def test_process_mode(tmp_path: Path) -> None:
    port_file, log = tmp_path / "port", tmp_path / "log.jsonl"
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "scripted_server.py"), "--port", "0",
                             "--port-file", str(port_file), "--latency", "0.01", "--log", str(log)],
                            stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        url = f"http://127.0.0.1:{int(port_file.read_text())}/v1"
        reply, = post(url, body("proc [[script:valid=3]]"))
        assert json.loads(content(reply))["overall"] == 3
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        assert len(entries) == 1 and entries[0]["script"] == "valid=3" and entries[0]["status"] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
