"""Self-grading guard (issue 16, point 3): a judge that is also a model under test is warned about (default),
refused (``--no-self-grading``) or allowed, recorded on the judgments, and the report shows that model's score
with and without that judge when a panel has others. Real runs against the scripted loopback server
(tests/scripted_server.py), no mocks."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from scripted_server import ScriptedServer
from test_cli_e2e import RUBRIC, flat, jk, read_jsonl, write_jsonl

import judgekit
from judgekit.api import JudgekitWarning
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Judgment
from judgekit.judging.rubric import load_rubric
from judgekit.judging.selfgrading import (
    check_self_grading,
    is_self_grading,
    mark_self_grading,
    normalise,
    panel_without,
    parse_aliases,
    same_model,
    self_grading_pairs,
)
from judgekit.reporting.selfgrading import self_grading_of

# ---- matching rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("judge", "model"), [
    ("openai/gpt-4o-mini", "gpt-4o-mini"),
    ("openai/gpt-4o-mini", "openai/gpt-4o-mini"),
    ("openai/gpt-4o-mini", "azure/GPT-4o-Mini"),
    ("openai/gpt-4o-mini", " gpt-4o-mini "),
    ("openai/gpt-4o-mini", "gpt-4o-mini [1-shot]"),
    ("openai/gpt-4o-mini", "gpt-4o-mini [3-shot + knowledge]"),
    ("hosted_vllm/Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct"),
    ("ollama/llama3:8b", "llama3:8b"),
    ("local/models/qwen2.5-0.5b.gguf", "qwen2.5-0.5b"),
    ("openai/m1@http://127.0.0.1:8000/v1", "m1"),
])
def test_same_model_matches(judge: str, model: str) -> None:
    assert same_model(judge, model) and same_model(model, judge)
    assert is_self_grading(judge, model)


@pytest.mark.parametrize(("judge", "model"), [
    ("openai/gpt-4o", "gpt-4o-mini"),
    ("openai/gpt-4o-mini", "gpt-4o-mini-2024"),
    ("anthropic/claude-3-haiku", "claude-3-sonnet"),
    ("openai/m1", ""),
    ("local/default", "m1"),
])
def test_different_models_do_not_match(judge: str, model: str) -> None:
    assert not same_model(judge, model)


def test_normalise() -> None:
    assert normalise("  OpenAI/GPT-4o [1-shot+] ") == "openai/gpt-4o"
    assert normalise("Qwen [0-shot + knowledge]") == "qwen"
    assert normalise("local/x/model.GGUF") == "local/x/model"
    assert normalise("openai/m@https://host/v1") == "openai/m"


def test_aliases() -> None:
    aliases = parse_aliases(["openai/local-server=Qwen2.5-7B", "ollama/q = my-finetune"])
    assert aliases == [("openai/local-server", "Qwen2.5-7B"), ("ollama/q", "my-finetune")]
    assert is_self_grading("openai/local-server", "qwen2.5-7b [1-shot]", aliases)
    assert is_self_grading("ollama/q", "my-finetune", aliases)
    assert not is_self_grading("openai/local-server", "my-finetune", aliases)
    assert not is_self_grading("openai/local-server", "Qwen2.5-7B")  # not without the alias
    assert parse_aliases({"openai/a": ["m1", "m2"]}) == [("openai/a", "m1"), ("openai/a", "m2")]
    assert parse_aliases(None) == [] and parse_aliases("j=m") == [("j", "m")]
    for bad in (["no-equals"], ["=m"], ["j="]):
        with pytest.raises(JudgekitError) as exc:
            parse_aliases(bad)
        assert exc.value.field == "--self-alias"


def test_pairs_and_policy() -> None:
    judges, models = ["openai/m1", "openai/j2", "openai/m2"], ["m1", "m2", "m1", "m3"]
    assert self_grading_pairs(judges, models) == [("openai/m1", "m1"), ("openai/m2", "m2")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_self_grading(judges, models, [], "warn", JudgekitWarning)
    texts = [str(w.message) for w in caught if issubclass(w.category, JudgekitWarning)]
    assert len(texts) == 2 and "openai/m1" in texts[0] and "model under test m1" in texts[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_self_grading(judges, models, [], "allow") == [("openai/m1", "m1"), ("openai/m2", "m2")]
        assert check_self_grading(["openai/j2"], models, [], "refuse") == []
    with pytest.raises(JudgekitError) as exc:
        check_self_grading(judges, models, [], "refuse")
    assert exc.value.field == "--judge" and "openai/m1" in str(exc.value) and "(m1)" in str(exc.value)
    with pytest.raises(JudgekitError):
        check_self_grading(judges, models, [], "sometimes")


def _member(judge: str, model: str, score: float | None, **extra: Any) -> Judgment:
    if score is None:
        return Judgment(id="q", model=model, judge=judge, status="unscored", reason="x")
    return Judgment(id="q", model=model, judge=judge, status="scored", overall=score, passed=score >= 3,
                    scores={c: score for c in ("technical_accuracy", "comprehensiveness", "relevance",
                                               "style_and_clarity")}, **extra)


def _panel(model: str, members: list[Judgment], overall: float, quorum: int = 2, how: str = "mean") -> Judgment:
    return Judgment(id="q", model=model, judge="panel:" + "+".join(m.judge for m in members), status="scored",
                    overall=overall, passed=overall >= 3, panel=members, panel_quorum=quorum, panel_reduce=how,
                    scores={})


def test_panel_without_by_hand() -> None:
    rubric = load_rubric(RUBRIC)  # overall given by the judge; pass: overall >= 3
    three = _panel("m1", [_member("openai/m1", "m1", 5), _member("a/j2", "m1", 2), _member("a/j3", "m1", 3)], 3.33)
    assert panel_without(three, ["openai/m1"], rubric) == (2.5, False)  # mean of 2 and 3; quorum min(2, 2)
    assert panel_without(three, ["openai/m1"], None) == (2.5, None)  # the rubric unknown: no pass verdict
    median = _panel("m1", [_member("openai/m1", "m1", 5), _member("a/j2", "m1", 2), _member("a/j3", "m1", 4)], 4,
                    how="median")
    assert panel_without(median, ["openai/m1"], rubric) == (3.0, True)
    short = _panel("m1", [_member("openai/m1", "m1", 5), _member("a/j2", "m1", 4), _member("a/j3", "m1", None)], 4.5)
    assert panel_without(short, ["openai/m1"], rubric) == (None, None)  # 1 of 2 scored, quorum 2
    two = _panel("m1", [_member("openai/m1", "m1", 5), _member("a/j2", "m1", 2)], 3.5)
    assert panel_without(two, ["openai/m1"], rubric) == (2.0, False)  # quorum min(2, majority of 1) = 1


def test_mark_self_grading_with_settings_and_aliases() -> None:
    single = _member("openai/m1", "m1 [1-shot]", 4, setting="1-shot")
    other = _member("openai/m1", "m2", 4)
    panel = _panel("m2", [_member("openai/m1", "m2", 4), _member("openai/srv", "m2", 2)], 3)
    assert mark_self_grading([single, other, panel], [("openai/srv", "m2")]) == 2
    assert single.self_grading == ["openai/m1"] and other.self_grading is None
    assert panel.self_grading == ["openai/srv"] and panel.panel[1].self_grading == ["openai/srv"]
    assert panel.panel[0].self_grading is None


# ---- real runs on the scripted server ---------------------------------------------------------------------

# (id, model, score by the judge openai/m1, score by the judge openai/j2): every criterion and overall
PANEL_CASES = [("q1", "m1", 5, 2), ("q2", "m1", 5, 4), ("q3", "m1", 4, 1), ("q1", "m2", 3, 3), ("q2", "m2", 2, 4)]


def _panel_rows() -> list[dict[str, Any]]:
    return [{"id": qid, "model": model, "category": "cat", "question": f"Self-grading question {qid}?",
             "reference": "A crack at the weld.",
             "response": f"Answer of {model} to {qid}. [[script@m1:valid={a}]] [[script@j2:valid={b}]]"}
            for qid, model, a, b in PANEL_CASES]


def test_cli_warns_records_and_reports_with_and_without(tmp_path: Path) -> None:
    responses = write_jsonl(tmp_path / "responses.jsonl", _panel_rows())
    out, store = tmp_path / "results.jsonl", tmp_path / "store.sqlite"
    with ScriptedServer() as srv:
        r = jk("judge", responses, "--rubric", RUBRIC, "--judge", "openai/m1", "--judge", "openai/j2",
               "--api-base", srv.base_url, "--store", store, "--out", out, "--no-progress", "--concurrency", "4")
        assert r.returncode == 0, r.stderr
        assert srv.requests == 2 * len(PANEL_CASES)
    err = flat(r.stderr)
    assert err.count("warning: self-grading:") == 1, err  # once per judge and model pair, naming both
    assert "the judge openai/m1 is also the model under test m1" in err
    rows = read_jsonl(out)
    for row in rows:
        expected = ["openai/m1"] if row["model"] == "m1" else None
        assert row["self_grading"] == expected
        assert [m["self_grading"] for m in row["panel"]] == [expected, None]

    jsn, md, page = tmp_path / "report.json", tmp_path / "report.md", tmp_path / "report.html"
    rep = jk("report", out, "--json", jsn, "--markdown", md, "--html", page, "--boot", "200")
    assert rep.returncode == 0, rep.stderr
    text = flat(rep.stdout)
    assert "self-grading: the judge openai/m1 is also the model under test m1 (3 judgments)" in text
    assert "Self-grading: the model's score with and without its own judge in the panel" in text
    # by hand: with the panel (mean of the two judges) m1 has overall 3.5, 4.5, 2.5 -> mean 3.5, 2 of 3 pass;
    # without openai/m1 (j2 alone, quorum min(2, 1) = 1): 2, 4, 1 -> mean 7/3, 1 of 3 pass
    section = json.loads(jsn.read_text(encoding="utf-8"))["self_grading"]
    assert section["pairs"] == [{"judge": "openai/m1", "model": "m1", "judgments": 3}]
    (row,) = section["panel"]
    assert (row["model"], row["panel"], row["left_out"], row["n"]) == ("m1", "panel:openai/m1+openai/j2",
                                                                        ["openai/m1"], 3)
    assert (row["scored_with"], row["scored_without"]) == (3, 3)
    assert row["overall_with"] == pytest.approx(3.5) and row["overall_without"] == pytest.approx(7 / 3)
    assert row["pass_rate_with"] == pytest.approx(2 / 3) and row["pass_rate_without"] == pytest.approx(1 / 3)
    assert row["delta_overall"] == pytest.approx(7 / 3 - 3.5)
    assert row["delta_pass_rate"] == pytest.approx(-1 / 3)
    markdown = md.read_text(encoding="utf-8")
    assert "## Self-grading" in markdown
    assert ("| m1 | panel:openai/m1+openai/j2 | openai/m1 | 3 | 3 | 3.50 | 66.7% | 3 | 2.33 | 33.3% | -1.17 "
            "| -33.3 pp |") in markdown
    html = page.read_text(encoding="utf-8")
    assert "<dt>self-grading</dt><dd>openai/m1 judged its own model m1 (3 judgments)</dd>" in html
    assert 'class="self-grading"' in html and "2.33" in html


def test_cli_refuses_with_no_self_grading_before_any_call(tmp_path: Path) -> None:
    responses = write_jsonl(tmp_path / "responses.jsonl", _panel_rows())
    out, store = tmp_path / "results.jsonl", tmp_path / "store.sqlite"
    with ScriptedServer() as srv:
        r = jk("judge", responses, "--rubric", RUBRIC, "--judge", "openai/j2", "--judge", "openai/M1",
               "--api-base", srv.base_url, "--store", store, "--out", out, "--no-progress", "--no-self-grading")
        assert srv.requests == 0
    assert r.returncode == 2, r.stderr
    err = flat(r.stderr)
    assert "--judge" in err and "openai/M1" in err and "(m1)" in err and "--no-self-grading" in err
    assert not out.exists() and not store.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["responses.jsonl"]


def test_api_alias_policies_and_csv_record(tmp_path: Path) -> None:
    rows = [{"id": f"q{i}", "model": "Qwen2.5-7B", "question": f"Alias question {i}?", "reference": "ok",
             "response": "An answer. [[script:valid=4]]"} for i in range(2)]
    with ScriptedServer() as srv:
        options: dict[str, Any] = {"judges": "openai/local-server", "api_base": srv.base_url, "concurrency": 2,
                                   "self_aliases": ["openai/local-server=Qwen2.5-7B"]}
        with pytest.raises(JudgekitError) as exc:
            judgekit.judge(rows, RUBRIC, store=tmp_path / "refused.sqlite", out=tmp_path / "refused.jsonl",
                           self_grading="refuse", **options)
        assert exc.value.field == "--judge" and srv.requests == 0
        assert not (tmp_path / "refused.sqlite").exists() and not (tmp_path / "refused.jsonl").exists()
        with pytest.warns(JudgekitWarning, match="the judge openai/local-server is also the model under test"):
            res = judgekit.judge(rows, RUBRIC, store=tmp_path / "s.sqlite", out=tmp_path / "r.csv", **options)
        assert res.self_grading == [{"judge": "openai/local-server", "model": "Qwen2.5-7B", "judgments": 2}]
        with warnings.catch_warnings():
            warnings.simplefilter("error", JudgekitWarning)
            quiet = judgekit.judge(rows, RUBRIC, store=tmp_path / "s.sqlite", self_grading="allow", **options)
        assert quiet.calls_made == 0 and quiet.self_grading == res.self_grading  # recorded whatever the policy
        plain = judgekit.judge(rows, RUBRIC, judges="openai/other", api_base=srv.base_url,
                               store=tmp_path / "s2.sqlite")
        assert plain.self_grading == [] and all(j.self_grading is None for j in plain.judgments)
    back = judgekit.Results.read(tmp_path / "r.csv")  # a list field survives CSV (JSON text)
    assert [j.self_grading for j in back.judgments] == [["openai/local-server"]] * 2
    found = self_grading_of(back.judgments, None)
    assert found is not None and found.rows == []  # a single judge: nothing to compare with
    assert "no other judge to compare with" in found.notes()[0]
    rep = judgekit.report(back, boot=50)
    assert rep.to_dict()["self_grading"]["pairs"][0]["model"] == "Qwen2.5-7B"
