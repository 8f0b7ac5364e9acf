"""``judgekit validate``: how far a local judge agrees with people, on the two shipped dev sets.

The judge scores every row through the same code ``judgekit judge --judge local/...`` uses
(:meth:`~judgekit.local.judge.LocalJudge.score_many`, one batch per item), with the RobustMAD rubric
(``rubrics/robustmad.yaml``), and its per-criterion values are compared with the human ratings:

SummEval (``devsets/summeval_dev.jsonl.gz``; 50 news articles x 16 summaries, mean of 3 expert ratings 1-5)
    Each row becomes a response to the question "Summarize the news article." with the article as the
    reference. Each SummEval dimension is compared with one rubric criterion (:data:`HEADLINE`):
    consistency -> technical_accuracy, relevance -> comprehensiveness, coherence and fluency ->
    style_and_clarity. Figure: **summary-level** Spearman (and Kendall tau-b): the correlation within each
    article over its 16 summaries, averaged over the articles, skipping articles where either side is
    constant (the convention of G-Eval and UniEval). It is computed on the judge's continuous calibrated
    value (``values`` in the stored rationale, the analogue of G-Eval's probability-weighted score) and,
    beside it, on the integer score.
NQ-open (``devsets/nq301_dev.tsv.gz``; 743 answers to 150 questions, human Yes/No correctness)
    Each row is a response with the question, the gold answers (one reference each) and the model's answer.
    Figures: ROC AUC of the technical_accuracy value against the human label (ties count one half), and
    Cohen's kappa between the rubric's pass rule (overall >= 3, on the integer scores) and the human label,
    with GPT-4's kappa and percent agreement against the same labels on the same rows beside it.

The likelihood calibration was fitted on these same rows (bench/validate_local.py fit), so its figures here
are in-sample; the cross-validated figures (fit on half of the articles / questions, scored on the other
half) are produced by ``python bench/validate_local.py report`` and shipped in ``validation_default.json``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import resource
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import mannwhitneyu

from judgekit.io.errors import JudgekitError
from judgekit.io.records import Response
from judgekit.stats.agreement import cohen_kappa, correlation

DEVSETS = Path(__file__).with_name("devsets")
VALIDATION_PATH = Path(__file__).with_name("validation_default.json")
SUMMEVAL_QUESTION = "Summarize the news article."
DIMS = ("coherence", "consistency", "fluency", "relevance")
HEADLINE = {"coherence": "style_and_clarity", "consistency": "technical_accuracy",
            "fluency": "style_and_clarity", "relevance": "comprehensiveness"}
TARGETS = {"summeval_mean": 0.35, "summeval_min": 0.25, "nq_auc": 0.85}


# ---- data ----------------------------------------------------------------------------------------------
SUMMEVAL_FIELDS = ("article_id", "summary_id", "article", "summary", *DIMS)
NQ_COLUMNS = ("qid", "question", "gold_answers", "model_answer", "human", "gpt4_label")


def _read_text(path: Path, what: str) -> str:
    """The text of a dev-set file (gzip when it ends in .gz or starts with gzip's magic bytes); a
    :class:`JudgekitError` naming the file when it cannot be read or is not UTF-8 text."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise JudgekitError(f"cannot read the {what} file: {exc.strerror or exc}", path=path) from None
    if path.suffix == ".gz" or data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise JudgekitError(f"not a readable gzip file ({exc})", path=path) from None
    if b"\x00" in data:
        raise JudgekitError(f"a binary file, not the {what} text file", path=path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JudgekitError(f"not UTF-8 text (byte {exc.start}); expected the {what} file", path=path) from None


def load_summeval(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The SummEval dev rows (the shipped copy unless ``path`` is given; .jsonl or .jsonl.gz): one JSON object
    a line with :data:`SUMMEVAL_FIELDS` (the four dimensions as numbers). A file that is not one raises
    :class:`JudgekitError` with the file, line and field."""
    p = Path(path) if path else DEVSETS / "summeval_dev.jsonl.gz"
    rows = []
    for n, line in enumerate(_read_text(p, "SummEval (JSON lines)").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise JudgekitError(f"not a JSON line ({exc.msg}); expected SummEval rows with "
                                f"{', '.join(SUMMEVAL_FIELDS)}", path=p, line=n) from None
        if not isinstance(row, dict):
            raise JudgekitError("expected a JSON object", path=p, line=n)
        for key in SUMMEVAL_FIELDS:
            if key not in row:
                raise JudgekitError("missing", path=p, line=n, field=key)
            if key in DIMS and not (isinstance(row[key], int | float) and not isinstance(row[key], bool)
                                    and np.isfinite(row[key])):
                raise JudgekitError(f"expected a number, found {row[key]!r}", path=p, line=n, field=key)
            if key in ("article", "summary") and not isinstance(row[key], str):
                raise JudgekitError("expected a text", path=p, line=n, field=key)
        rows.append(row)
    if not rows:
        raise JudgekitError("no SummEval rows", path=p)
    return rows


def load_nq(path: str | Path | None = None) -> list[dict[str, str]]:
    """The NQ-open dev rows (the shipped copy unless ``path`` is given; .tsv or .tsv.gz): tab-separated with a
    header holding :data:`NQ_COLUMNS`; ``human`` is Yes or No. A file that is not one raises
    :class:`JudgekitError` with the file, line and column."""
    p = Path(path) if path else DEVSETS / "nq301_dev.tsv.gz"
    reader = csv.DictReader(io.StringIO(_read_text(p, "NQ (TSV)")), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = reader.fieldnames or []
    missing = [c for c in NQ_COLUMNS if c not in header]
    if missing:
        raise JudgekitError(f"not an NQ dev file: the header (line 1) lacks the column(s) {', '.join(missing)}; "
                            f"expected tab-separated {', '.join(NQ_COLUMNS)}", path=p, line=1)
    rows = []
    for row in reader:
        for c in NQ_COLUMNS:
            if row.get(c) is None:
                raise JudgekitError("missing (too few tab-separated fields)", path=p, line=reader.line_num, field=c)
        if row["human"] not in ("Yes", "No"):
            raise JudgekitError(f"expected Yes or No, found {row['human']!r}", path=p, line=reader.line_num,
                                field="human")
        rows.append(row)
    if not rows:
        raise JudgekitError("no NQ rows", path=p)
    return rows


def nq_golds(row: dict[str, str]) -> list[str]:
    return [g.strip() for g in row["gold_answers"].split(" | ") if g.strip()]


def summeval_responses(rows: Sequence[dict[str, Any]]) -> list[Response]:
    return [Response(id=str(r["article_id"]), model=str(r["summary_id"]), question=SUMMEVAL_QUESTION,
                     reference=r["article"], response=r["summary"]) for r in rows]


def nq_responses(rows: Sequence[dict[str, str]]) -> list[Response]:
    return [Response(id=f"nq{r['qid']}", model=f"row{i}", question=r["question"], reference=r["gold_answers"],
                     response=r["model_answer"], meta={"references": nq_golds(r)}) for i, r in enumerate(rows)]


# ---- metrics ------------------------------------------------------------------------------------------
def summary_level(groups: Sequence[Any], pred: Sequence[float], human: Sequence[float],
                  method: str = "spearman") -> float:
    """Summary-level correlation: ``method`` (spearman or kendall tau-b) within each group, averaged over
    the groups; groups where either side is constant are skipped. NaN when no group is left.

    :func:`judgekit.stats.agreement.correlation` at ``level="summary"`` (pairs with a NaN side dropped first)."""
    return correlation(np.asarray(pred, float), np.asarray(human, float), method=method,  # type: ignore[arg-type]
                       level="summary", groups=np.asarray(groups)).value


def roc_auc(score: Sequence[float], label: Sequence[bool]) -> float:
    """ROC AUC of ``score`` for the positive ``label`` (Mann-Whitney form; ties count one half): the
    Mann-Whitney U of the positives' scores against the negatives' (``scipy.stats.mannwhitneyu``) over
    ``n1 * n0``."""
    s, pos = np.asarray(score, float), np.asarray(label, bool)
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float(mannwhitneyu(s[pos], s[~pos]).statistic / (n1 * n0))


def kappa_binary(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Cohen's kappa of two binary labelings (chance agreement from each side's own marginals):
    :func:`judgekit.stats.agreement.cohen_kappa`."""
    return cohen_kappa(np.asarray(a, bool), np.asarray(b, bool))


# ---- the run ------------------------------------------------------------------------------------------
def _score_by_item(judge: Any, responses: list[Response], rubric: Any,
                   progress: Callable[[int, int], None] | None) -> tuple[list[dict[str, Any]], float]:
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(responses):
        groups.setdefault(r.id, []).append(i)
    out: list[dict[str, Any] | None] = [None] * len(responses)
    t0 = time.perf_counter()
    done = 0
    for idx in groups.values():
        for i, res in zip(idx, judge.score_many([responses[i] for i in idx], rubric), strict=True):
            out[i] = res
        done += len(idx)
        if progress:
            progress(done, len(responses))
    return [o for o in out if o is not None], (time.perf_counter() - t0) / max(1, len(responses))


def validate(model: str = "default", mode: str = "likelihood", *, articles: int | None = None,
             questions: int | None = None, threads: int | None = None, calibration: str | None = None,
             summeval_path: str | Path | None = None, nq_path: str | Path | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Score the dev sets (the first ``articles`` SummEval articles and ``questions`` NQ questions, all
    when None) with the local judge and return the agreement figures described in the module docstring."""
    from judgekit.judging.rubric import load_rubric
    from judgekit.local.judge import LocalJudge
    from judgekit.sample_data import rubric_path

    rubric = load_rubric(rubric_path("robustmad"))
    se_rows = load_summeval(summeval_path)  # bad input fails before the model is loaded
    nq_rows = load_nq(nq_path)
    t0 = time.perf_counter()
    judge = LocalJudge(model, mode=mode, threads=threads, calibration=calibration)  # type: ignore[arg-type]
    load_s = time.perf_counter() - t0

    keep_a = list(dict.fromkeys(r["article_id"] for r in se_rows))[:articles]
    se_rows = [r for r in se_rows if r["article_id"] in set(keep_a)]
    keep_q = list(dict.fromkeys(r["qid"] for r in nq_rows))[:questions]
    nq_rows = [r for r in nq_rows if r["qid"] in set(keep_q)]

    def prog(name: str) -> Callable[[int, int], None] | None:
        return (lambda d, n: progress(name, d, n)) if progress else None

    nq_res, nq_s = _score_by_item(judge, nq_responses(nq_rows), rubric, prog("NQ"))
    se_res, se_s = _score_by_item(judge, summeval_responses(se_rows), rubric, prog("SummEval"))

    groups = [r["article_id"] for r in se_rows]
    summeval: dict[str, Any] = {}
    for dim, crit in HEADLINE.items():
        human = [float(r[dim]) for r in se_rows]
        val = [res["values"][crit] for res in se_res]
        ints = [res["scores"][crit] for res in se_res]
        summeval[dim] = {"criterion": crit, "spearman": summary_level(groups, val, human),
                         "kendall": summary_level(groups, val, human, "kendall"),
                         "spearman_int": summary_level(groups, ints, human)}
    sp = [summeval[d]["spearman"] for d in DIMS]
    summeval["mean_spearman"] = float(np.mean(sp))
    summeval["min_spearman"] = float(np.min(sp))
    summeval["mean_spearman_int"] = float(np.mean([summeval[d]["spearman_int"] for d in DIMS]))

    human_yes = [r["human"] == "Yes" for r in nq_rows]
    gpt4 = [r["gpt4_label"] == "Yes" for r in nq_rows]
    passed = [rubric.passed({k: float(v) for k, v in res["scores"].items()}) for res in nq_res]
    nq = {"auc_accuracy": roc_auc([res["values"]["technical_accuracy"] for res in nq_res], human_yes),
          "auc_overall": roc_auc([res["values"]["overall"] for res in nq_res], human_yes),
          "kappa_pass": kappa_binary(passed, human_yes),
          "agreement_pass": float(np.mean(np.array(passed) == np.array(human_yes))),
          "pass_rate": float(np.mean(passed)), "human_yes_rate": float(np.mean(human_yes)),
          "kappa_gpt4": kappa_binary(gpt4, human_yes),
          "agreement_gpt4": float(np.mean(np.array(gpt4) == np.array(human_yes))),
          "pass_rule": str(rubric.pass_rule)}
    return {
        "model": judge.lm.name, "mode": mode, "rubric": f"{rubric.name} {rubric.version}",
        "calibration": calibration or ("shipped" if mode == "likelihood" else None),
        "rows": {"summeval": len(se_rows), "summeval_articles": len(keep_a), "nq": len(nq_rows),
                 "nq_questions": len(keep_q)},
        "summeval": summeval, "nq": nq,
        "seconds_per_judgment": {"summeval": se_s, "nq": nq_s}, "load_s": load_s,
        "threads": judge.lm.threads, "device": judge.lm.device, "dtype": judge.lm.dtype,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "targets": TARGETS,
    }


def shipped_figures() -> dict[str, Any] | None:
    """The measured figures of the default judge shipped with judgekit (``validation_default.json``), or
    None when the file is missing."""
    try:
        return json.loads(VALIDATION_PATH.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def figures_line(fig: dict[str, Any]) -> str:
    """One line with the headline agreement figures of a validation result."""
    s, n = fig["summeval"], fig["nq"]
    return (f"SummEval summary-level Spearman mean {s['mean_spearman']:.3f} (min {s['min_spearman']:.3f}); "
            f"NQ AUC {n['auc_accuracy']:.3f}, kappa at pass {n['kappa_pass']:.3f} "
            f"(GPT-4 {n['kappa_gpt4']:.3f} on the same rows)")
