"""The per-call shortcuts of issue 17 give exactly what the full path gives: redaction that skips its regex
search on a text that cannot hold a credential, the price lookup that parses litellm's price map only when a name
occurs in it, the judge settings stored as text computed once, and the token estimate made only for a tpm limit."""

from __future__ import annotations

import asyncio
import json
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from judgekit.io import redact as redact_mod
from judgekit.io.records import Response
from judgekit.judging import backends
from judgekit.judging.backends import ChatRequest, ChatResult, JudgeSpec, price_per_token
from judgekit.judging.control import call_with_retries
from judgekit.judging.merge import record_identity
from judgekit.judging.runner import RunOptions
from judgekit.judging.store import Store, settings_text

# ---- redact -------------------------------------------------------------------------------------------------
TEXTS = [
    '{"overall": 4, "rationale": "Right on the main point; leaves out the location detail."}',
    "plain text without anything secret",
    "Authorization: Bearer abcdefgh12345678 was sent",
    "authorization: BEARER abcdefgh12345678",
    "key sk-proj-abcdefghijklmnop0123 leaked",
    "KEY SK-ABCDEFGHIJKLMNOPQRS leaked",
    "HTTP 503 from http://bob:hunter2pw@a:8000/v1: busy",
    "see user@example.com",
    '{"api_key": "abcdefgh12345678"}',
    "x-api-key=abcdefgh12345678",
    "Api-Key: abcdefgh12345678 and ACCESS_TOKEN=abcdefgh12345678",
    "accesstoken: abcdefgh12345678",
    "rapid apiary access",  # words that only look like the forms: searched, nothing masked
    # non-ASCII letters that IGNORECASE matches to ASCII ones: always searched
    "\u017fk-abcdefghijklmnopqrst (long s)",
    "bearer with a \u212aelvin sign: Bearer abcdefgh12345678",
    "\u0130 dotted capital I, api_key=abcdefgh12345678",
    "caf\u00e9 au lait, nothing secret",
    "",
]


@pytest.mark.parametrize("text", TEXTS)
def test_redact_equals_the_full_regex_search(text: str) -> None:
    full = redact_mod._shapes().sub(redact_mod._shape_sub, text) if text else text
    assert redact_mod.redact(text) == full
    secret = "s3cr3t-value-xyz"
    assert redact_mod.redact(text + " " + secret, [secret]) == redact_mod._shapes().sub(
        redact_mod._shape_sub, (text + " " + secret).replace(secret, redact_mod.MASK))


def test_redact_leaves_a_plain_reply_unchanged_and_masks_the_forms() -> None:
    reply = TEXTS[0]
    assert not redact_mod._may_hold_shape(reply)
    assert redact_mod.redact(reply) is reply
    assert redact_mod.redact("Bearer abcdefgh12345678") == "Bearer ***"
    assert redact_mod.redact("\u017fk-abcdefghijklmnopqrst") == "***"  # the long s matches "s" under IGNORECASE
    assert redact_mod.redact(None) is None


# ---- price_per_token -----------------------------------------------------------------------------------------
def _full_parse_price(model: str) -> tuple[float, float] | None:
    """price_per_token as it was: the whole map parsed."""
    spec = find_spec("litellm")
    if spec is None or not spec.origin:
        return None
    prices = json.loads((Path(spec.origin).parent / "model_prices_and_context_window_backup.json").read_text("utf-8"))
    for name in (model, model.split("/", 1)[-1]):
        entry = prices.get(name)
        if entry and "input_cost_per_token" in entry:
            return float(entry["input_cost_per_token"]), float(entry.get("output_cost_per_token", 0.0))
    return None


@pytest.mark.parametrize("model", ["gpt-4o-mini", "openai/gpt-4o-mini", "bench", "openai/bench", "openai",
                                   "openai/openai", "gpt-4o", "anthropic/claude-3-5-sonnet-20240620",
                                   "hosted_vllm/Qwen/Qwen2.5-7B-Instruct", "", 'a"b', "sample_spec"])
def test_price_lookup_equals_the_full_parse(model: str) -> None:
    assert price_per_token(model) == _full_parse_price(model)


@pytest.mark.parametrize(("text", "plain"), [
    ('{"a": 1}', True), ('{"a\\\\b": 1}', True), ('{"a\\"b": 1}', True), ('{"a\\u002db": 1}', False),
    ('{"a\\/b": 1}', False), ('{"a\\\\u": 1}', True), ('{"a\\\\\\/": 1}', False), ('{"a": "\\\\"}', True)])
def test_plain_spelling(text: str, plain: bool) -> None:
    assert backends._plain(text.encode()) is plain
    assert json.loads(text)  # every case is valid JSON


def test_price_map_is_parsed_only_when_a_name_occurs(monkeypatch: pytest.MonkeyPatch) -> None:
    text = json.dumps({"known-model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}})

    def no_parse() -> dict[str, Any]:
        raise AssertionError("the map was parsed for a name it does not hold")

    monkeypatch.setattr(backends, "_price_text", lambda: (text.encode(), True))
    monkeypatch.setattr(backends, "_price_map", no_parse)
    assert price_per_token("openai/unknown") is None
    monkeypatch.setattr(backends, "_price_map", lambda: json.loads(text))
    assert price_per_token("openai/known-model") == (1e-6, 2e-6)
    # a file that spells strings with \u escapes is always parsed: the plain search could miss a key
    escaped = '{"known\\u002dmodel": {"input_cost_per_token": 1e-06}}'
    monkeypatch.setattr(backends, "_price_text", lambda: (escaped.encode(), False))
    monkeypatch.setattr(backends, "_price_map", lambda: json.loads(escaped))
    assert price_per_token("known-model") == (1e-6, 0.0)
    # the search is on the file's UTF-8 bytes: a name outside ASCII is found as its bytes
    accented = json.dumps({"modèle-ü": {"input_cost_per_token": 3e-6}}, ensure_ascii=False)
    monkeypatch.setattr(backends, "_price_text", lambda: (accented.encode(), True))
    monkeypatch.setattr(backends, "_price_map", lambda: json.loads(accented))
    assert price_per_token("x/modèle-ü") == (3e-6, 0.0)
    assert price_per_token("x/modèle-u") is None


# ---- the settings column -------------------------------------------------------------------------------------
def test_settings_given_as_text_are_stored_as_the_dict_would_be(tmp_path: Path) -> None:
    spec = JudgeSpec(model="openai/bench", api_base="http://x/v1", extra={"b": 1, "a": [2]})
    resp = Response(id="r", model="m", question="q", reference="ref", response="a")
    with Store(tmp_path / "s.sqlite") as store:
        for key, settings in (("k1", spec.identity()), ("k2", settings_text(spec.identity()))):
            store.add_call(key=key, attempt=0, status="ok", response=resp, judge=spec.model, sample=0, reply="{}",
                           scores={"a": 3}, rationale="", reason=None, tokens_in=1, tokens_out=1, cost=None,
                           latency_s=0.1, temperature=0.0, seed=0, settings=settings, rubric="r", rubric_version="1")
        record_identity(store, rubric_fingerprint="f", rubric_name="r", rubric_version="1", prompt_version="1",
                        judges=[spec.identity()])
        rows = store._db.execute("SELECT settings FROM calls ORDER BY key").fetchall()
        judge_rows = store._db.execute("SELECT v FROM meta WHERE k LIKE 'judge:%'").fetchall()
    assert rows[0] == rows[1] == (json.dumps(spec.identity(), sort_keys=True),)
    assert judge_rows == [rows[0]]


# ---- the token estimate -------------------------------------------------------------------------------------
class _Backend:
    model = "m"
    kind = "lean"
    accepts_images = True

    async def complete(self, request: ChatRequest) -> ChatResult:
        return ChatResult(text="{}")

    async def aclose(self) -> None:
        return None


class _Limiter:
    max_rate = 10_000.0

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def acquire(self, amount: float = 1) -> None:
        self.asked.append(amount)


def test_the_token_estimate_goes_to_the_tpm_limiter() -> None:
    messages = [{"role": "system", "content": "x" * 400}, {"role": "user", "content": [{"type": "text"}]}]
    req = ChatRequest(messages=messages, temperature=0.0, seed=0, max_tokens=100)
    tpm = _Limiter()
    res = asyncio.run(call_with_retries(_Backend(), req, RunOptions(), tpm=tpm))
    assert res.text == "{}"
    assert tpm.asked == [(400 + 1000) // 4 + 100]
    tpm.max_rate = 50.0
    asyncio.run(call_with_retries(_Backend(), req, RunOptions(), tpm=tpm))
    assert tpm.asked[-1] == 50.0
    assert asyncio.run(call_with_retries(_Backend(), req, RunOptions())).text == "{}"  # no limiter: no estimate
