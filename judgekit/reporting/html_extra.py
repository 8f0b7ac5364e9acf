"""The optional parts of the HTML report (:mod:`judgekit.reporting.html`): the agreement of the judge with human
ratings (``judgekit report --human``, in the judge card, with a judge-vs-human heatmap among the plots) and the
comparison with another run of the same answers (``judgekit report --compare``).

Every figure is rendered from the JSON the report writes (``Report.to_dict()["agreement"]`` and
``["comparison"]``), and its cell carries ``data-field`` (the figure's name), ``data-value`` (its JSON value)
and ``data-path`` (where the value sits in that JSON, as a JSON list of keys and indexes; for a cell showing
several figures, such as a value and its interval, a list of such paths and ``data-value`` the list of their
values), so that a reader or a test can check the page against the JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from judgekit.reporting.html import _e, _table

JsonPath = list[str | int]


def _fmt(x: Any, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _cell(name: str, path: JsonPath | list[JsonPath], value: Any, shown: str, *, text: bool = False) -> str:
    """A cell carrying its figure's name, JSON value and JSON path."""
    cls = ' class="t"' if text else ""
    return (f'<td{cls} data-field="{_e(name)}" data-path="{_e(json.dumps(path))}" '
            f'data-value="{_e(json.dumps(value))}">{_e(shown)}</td>')


def _pair(name: str, base: JsonPath, keys: tuple[str, str], d: Mapping[str, Any], *, pct: bool = False,
          signed: bool = False) -> str:
    """A cell showing the interval ``[d[keys[0]], d[keys[1]]]`` of the entry at ``base``."""
    lo, hi = d.get(keys[0]), d.get(keys[1])
    if lo is None or hi is None:
        shown = "-"
    elif pct:
        shown = f"[{100 * lo:{'+' if signed else ''}.1f}, {100 * hi:{'+' if signed else ''}.1f}]"
    else:
        shown = f"[{lo:{'+' if signed else ''}.3f}, {hi:{'+' if signed else ''}.3f}]"
    return _cell(name, [[*base, keys[0]], [*base, keys[1]]], [lo, hi], shown)


def _with_ci(name: str, at: JsonPath, value_key: str, ci_keys: tuple[str, str] | str, d: Mapping[str, Any],
             shown: str, ci_shown: str) -> str:
    """A cell showing a figure and its interval: ``data-path`` holds the figure's path then the interval's
    (one path to a [low, high] list, or the two paths of low and high), ``data-value`` their values."""
    if isinstance(ci_keys, str):
        paths: list[JsonPath] = [[*at, value_key], [*at, ci_keys]]
        values = [d[value_key], d[ci_keys]]
    else:
        paths = [[*at, value_key], [*at, ci_keys[0]], [*at, ci_keys[1]]]
        values = [d[value_key], d[ci_keys[0]], d[ci_keys[1]]]
    return _cell(name, paths, values, f"{shown} {ci_shown}")


def _ci_text(lo: Any, hi: Any, *, pct: bool = False, signed: bool = False, digits: int = 1) -> str:
    if lo is None or hi is None:
        return ""
    sign = "+" if signed else ""
    if pct:
        return f"[{100 * lo:{sign}.{digits}f}, {100 * hi:{sign}.{digits}f}]"
    return f"[{lo:{sign}.{digits}f}, {hi:{sign}.{digits}f}]"


# ---- agreement with human ratings --------------------------------------------------------------------------------

def agreement_html(agreement: Any, payload: Mapping[str, Any]) -> str:
    """The judge card's agreement part: per criterion the statistics of ``judgekit agree`` with their
    bootstrap intervals, the inter-human ceiling (each human against the mean or mode of the others, the judge
    against the same references: the judge's leave-one-out figure beside the ceiling), and the
    prediction-powered pass rates per model beside the judge-only ones when computed. ``agreement`` is a
    :class:`judgekit.api.Agreement`, ``payload`` its ``to_dict()``."""
    out = [f'<div id="agreement"><h3>Agreement with human ratings</h3><p>{_e(payload["human_file"])}: '
           f'the judge against the human ratings, per criterion (the figures of <code>judgekit agree</code>).</p>']
    for section in agreement.sections:
        c = section.criterion
        d = payload["criteria"][c]
        rep = d["report"]
        base: JsonPath = ["agreement", "criteria", c, "report"]
        out.append(f'<h4>{_e(c)}</h4><p class="note">{rep["n_items"]:,} responses rated by {len(d["raters"])} '
                   f'human(s) ({_e(", ".join(d["raters"]))}); {_e(d["kind"])} ({_e("; ".join(d["notes"]))}); '
                   f'correlation levels: {_e(", ".join(d["levels"]))}'
                   + (f' (summary = within each {_e(d["group_by"])}, averaged)' if section.grouped else "")
                   + (f'; {d["dropped_unscored"]} rated response(s) left out: the judge\'s reply was unscored'
                      if d["dropped_unscored"] else "") + "</p>")
        body = []
        for i, e in enumerate(rep["entries"]):
            at: JsonPath = [*base, "entries", i]
            body.append([_e(e["name"]), _e(e["compares"]), _e(e["level"]),
                         _cell(e["name"], [*at, "value"], e["value"], _fmt(e["value"])),
                         _pair(f"{e['name']} CI", at, ("ci_low", "ci_high"), e),
                         _cell("n_items", [*at, "n_items"], e["n_items"], str(e["n_items"])),
                         f'<td class="t wrap">{_e(e["note"])}</td>'])
        out.append(_table(["statistic", "compares", "level", "value", f"{100 * rep['confidence']:g} % CI", "n",
                           "note"], body, text_columns=3, attrs=f' class="agreement" data-criterion="{_e(c)}"')
                   .replace("<th>note</th>", '<th class="t">note</th>'))
        out.append(_ceiling(rep["ceiling"], [*base, "ceiling"], c))
        if d.get("ppi"):
            out.append(_ppi(d["ppi"], ["agreement", "criteria", c, "ppi"], c))
        if rep["notes"]:
            out.append('<p class="note">' + "<br>".join(_e(n) for n in rep["notes"]) + "</p>")
    out.append(f'<p class="note">Intervals: {_e(agreement.sections[0].report.resampling) if agreement.sections else ""}'
               f' bootstrap. The ceiling row is the mean over the humans of each human against the others; the '
               f'judge column beside it is the judge against the same references on the same items, so a judge '
               f'at the ceiling agrees with people as well as they agree with each other.</p></div>')
    return "".join(out)


def _ceiling(ceiling: Mapping[str, Any] | None, base: JsonPath, criterion: str) -> str:
    if not ceiling or not ceiling.get("raters"):
        return '<p class="note">Inter-human ceiling: needs at least two raters per item.</p>'
    stats = ceiling["statistics"]
    header = ["rater", "items", *(f"{st} {who}" for st in stats for who in ("human", "judge"))]
    body = []
    for i, r in enumerate(ceiling["raters"]):
        at: JsonPath = [*base, "raters", i]
        body.append([_e(r["rater"]), _cell("n_items", [*at, "n_items"], r["n_items"], str(r["n_items"])),
                     *(_cell(f"{st} {who}", [*at, who, st], r[who].get(st), _fmt(r[who].get(st)))
                       for st in stats for who in ("human", "judge"))])
    body.append(["<b>mean (ceiling)</b>", _cell("n_items", [*base, "n_items"], ceiling["n_items"],
                                                str(ceiling["n_items"])),
                 *(_cell(f"{st} {who}", [*base, key, st], ceiling[key].get(st), _fmt(ceiling[key].get(st)))
                   for st in stats for who, key in (("ceiling", "ceiling"), ("judge", "judge_loo")))])
    return (f'<p class="note">Inter-human ceiling: each human against the {_e(ceiling["reference"])} of the '
            f'others, and the judge against the same references on the same items.</p>'
            + _table(header, body, attrs=f' class="ceiling" data-criterion="{_e(criterion)}"'))


def _ppi(rows: Sequence[Mapping[str, Any]], base: JsonPath, criterion: str) -> str:
    header = ["model", "n rated", "N judge only", "judge-only pass rate [95 % CI]", "human-only [95 % CI]",
              "PPI pass rate [95 % CI]", "n eff"]
    notes = any(p.get("note") for p in rows)
    if notes:
        header.append("note")
    body = []
    for i, p in enumerate(rows):
        at: JsonPath = [*base, i]
        group = p["group"]
        label = " / ".join(str(x) for x in group) if isinstance(group, list) else str(group)
        body.append([_cell("model", [*at, "group"], group, label, text=True),
                     _cell("n_labeled", [*at, "n_labeled"], p["n_labeled"], str(p["n_labeled"])),
                     _cell("n_unlabeled", [*at, "n_unlabeled"], p["n_unlabeled"], str(p["n_unlabeled"])),
                     *(_with_ci(key, at, key, (f"{ci}_low", f"{ci}_high"), p, _pct(p[key]),
                                _ci_text(p[f"{ci}_low"], p[f"{ci}_high"], pct=True))
                       for key, ci in (("judge_rate", "judge_ci"), ("human_rate", "human_ci"), ("estimate", "ci"))),
                     _cell("n_effective", [*at, "n_effective"], p["n_effective"], _fmt(p["n_effective"], 0)),
                     *([f'<td class="t wrap">{_e(p["note"])}</td>'] if notes else [])])
    return ('<p class="note">Pass rates per model: the judge\'s own (every answer it scored, Wilson) beside the '
            'human-only estimate (the rated answers, Wilson) and the prediction-powered one (the judge on every '
            'answer, corrected by the rated ones; CLT interval). n eff: how many human ratings a human-only '
            'estimate would need for the same precision.</p>'
            + _table(header, body, attrs=f' class="ppi" data-criterion="{_e(criterion)}"')
            .replace("<th>note</th>", '<th class="t">note</th>'))


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def confusion_counts(section: Any) -> tuple[list[list[int]], list[str], list[str]] | None:
    """The judge-vs-human table of one criterion (a :class:`judgekit.api.CriterionAgreement`): rows the human
    rating of each rated item (mean of its raters rounded half up; binary: the majority label, a tie counts as
    no), columns the judge's score rounded half up (binary: its pass/fail), as ``(counts, row labels, column
    labels)``; labels run over the whole scale. None when there is nothing to count or more than 11 levels."""
    import numpy as np

    jn = section.joined
    if jn is None or len(jn.judge) == 0:
        return None
    humans, judge = np.asarray(jn.humans, dtype=float), np.asarray(jn.judge, dtype=float)
    pairs = []
    for i in range(len(judge)):
        row = humans[i][~np.isnan(humans[i])]
        if row.size == 0 or math.isnan(judge[i]):
            continue
        h = float(row.mean())
        pairs.append((int(h > 0.5) if jn.kind == "binary" else _round_half_up(h),
                      int(judge[i] > 0.5) if jn.kind == "binary" else _round_half_up(float(judge[i]))))
    if not pairs:
        return None
    if jn.kind == "binary":
        levels = [0, 1]
        rows_l, cols_l = ["no", "yes"], ["fail", "pass"]
    else:
        scale = section.report.scale or (1.0, 5.0)
        lo = min(_round_half_up(scale[0]), *(min(p) for p in pairs))
        hi = max(_round_half_up(scale[1]), *(max(p) for p in pairs))
        if hi - lo > 10:
            return None
        levels = list(range(lo, hi + 1))
        rows_l = cols_l = [str(v) for v in levels]
    index = {v: k for k, v in enumerate(levels)}
    counts = [[0] * len(levels) for _ in levels]
    for h, j in pairs:
        counts[index[h]][index[j]] += 1
    return counts, rows_l, cols_l


def agreement_figure(agreement: Any) -> tuple[str, str] | None:
    """``(caption, svg)`` of the judge-vs-human heatmap on the overall criterion (else the first compared one),
    or None when it cannot be drawn."""
    from judgekit.reporting import plots

    if not agreement.sections:
        return None
    section = agreement.criteria.get("overall") or agreement.sections[0]
    table = confusion_counts(section)
    if table is None:
        return None
    counts, rows, cols = table
    binary = section.kind == "binary"
    svg = plots.confusion(counts, rows, cols,
                          ylabel="human label (majority)" if binary else "human rating (mean, rounded)",
                          xlabel="judge verdict" if binary else "judge score (rounded)")
    caption = (f"Judge vs human on {section.criterion}: rated answers counted by the humans' "
               + ("majority label" if binary else "mean rating (rounded half up)")
               + " and the judge's " + ("pass/fail" if binary else "score (rounded half up)")
               + "; outlined: the diagonal where they agree")
    return caption, svg


# ---- comparison with another run ---------------------------------------------------------------------------------

def comparison_html(payload: Mapping[str, Any]) -> str:
    """The "Comparison" section: per model the pass rates and mean overall scores under run A (this report's
    judgments) and run B, the paired differences B - A with bootstrap intervals, McNemar and Wilcoxon p-values,
    ranks by pass rate under each run and the change (positive: better under B); then the agreement of the two
    runs and the matching counts. ``payload``: ``Comparison.to_dict()`` (what ``judgekit compare --json``
    writes)."""
    base: JsonPath = ["comparison"]
    out = [f'<section id="comparison"><h2>Comparison</h2><p>Run A: {_e(payload["run_a"])} (judge '
           f'{_e(payload["judge_a"])}); run B: {_e(payload["run_b"])} (judge {_e(payload["judge_b"])}). The same '
           f'answers matched on (id, model, condition); differences are B - A.</p>']
    header = ["model", "n", "pass A", "pass B", "pass Δ (points) [95 % CI]", "McNemar p", "McNemar p adj",
              "overall A", "overall B", "overall Δ [95 % CI]", "Wilcoxon p", "Wilcoxon p adj", "rank A → B (change)"]
    star = ' <span class="star">*</span>'

    body = []
    for i, m in enumerate(payload["models"]):
        at: JsonPath = [*base, "models", i]

        def c(key: str, shown: str, at: JsonPath = at, m: Mapping[str, Any] = m) -> str:
            return _cell(key, [*at, key], m[key], shown)

        def adj(key: str, m: Mapping[str, Any] = m) -> str:  # the adjusted p-value, starred below 0.05
            if key not in m:
                return "<td>-</td>"
            cell, p = c(key, _fmt(m[key])), m[key]
            return cell.removesuffix("</td>") + star + "</td>" if p is not None and p < 0.05 else cell

        diff, odiff = m["pass_rate_diff"], m["mean_overall_diff"]
        ranks = (f"{m['rank_a']} → {m['rank_b']} ({m['rank_change']:+d})" if m["rank_a"] and m["rank_b"]
                 else "-")
        body.append([_cell("model", [*at, "model"], m["model"], m["model"], text=True), c("n", str(m["n"])),
                     c("pass_rate_a", _pct(m["pass_rate_a"])), c("pass_rate_b", _pct(m["pass_rate_b"])),
                     _with_ci("pass_rate_diff", at, "pass_rate_diff", "pass_rate_diff_ci", m,
                              "-" if diff is None else f"{100 * diff:+.1f}",
                              _ci_text(*m["pass_rate_diff_ci"], pct=True, signed=True)),
                     c("mcnemar_p", _fmt(m["mcnemar_p"])), adj("mcnemar_p_adj"),
                     c("mean_overall_a", _fmt(m["mean_overall_a"], 2)),
                     c("mean_overall_b", _fmt(m["mean_overall_b"], 2)),
                     _with_ci("mean_overall_diff", at, "mean_overall_diff", "mean_overall_diff_ci", m,
                              "-" if odiff is None else f"{odiff:+.2f}",
                              _ci_text(*m["mean_overall_diff_ci"], signed=True, digits=2)),
                     c("wilcoxon_p", _fmt(m["wilcoxon_p"])), adj("wilcoxon_p_adj"),
                     _cell("rank_change", [[*at, "rank_a"], [*at, "rank_b"], [*at, "rank_change"]],
                           [m["rank_a"], m["rank_b"], m["rank_change"]], ranks)])
    out.append(_table(header, body, attrs=' class="comparison"'))
    out.append(f'<p class="note">Pass-rate differences in percentage points; intervals: percentile bootstrap, '
               f'{payload["boot"]:,} resamples of the matched answers (seed {payload["seed"]}); McNemar exact test '
               f'on the pass verdicts, Wilcoxon signed-rank (Pratt) on the overall scores. Ranks by pass rate '
               f'(ties share a rank); rank change = rank A - rank B. <span class="star">*</span> adjusted p &lt; '
               f'0.05; {_e(payload.get("family", "p-values not adjusted for multiple comparisons"))}.</p>')
    a = payload["agreement"]
    at = [*base, "agreement"]
    rows = [("compared answers", "n", str(a["n"])),
            ("pass verdicts: Cohen's kappa", "pass_kappa", _fmt(a["pass_kappa"])),
            ("pass verdicts: agreement", "pass_percent_agreement", _pct(a["pass_percent_agreement"])),
            ("overall: quadratic-weighted kappa", "overall_quadratic_kappa", _fmt(a["overall_quadratic_kappa"])),
            ("overall: Spearman", "overall_spearman", _fmt(a["overall_spearman"]))]
    out.append("<h3>Agreement of the two runs (sample level)</h3>")
    out.append(_table(["statistic", "value"], [[_e(label), _cell(key, [*at, key], a[key], shown)]
                                               for label, key, shown in rows], attrs=' class="run-agreement"'))
    if a.get("note"):
        out.append(f'<p class="note">{_e(a["note"])}</p>')
    k = payload["counts"]
    labels = (("matched", "matched"), ("in A only", "only_a"), ("in B only", "only_b"),
              ("unscored in A", "unscored_a"), ("unscored in B", "unscored_b"),
              ("unscored in either (excluded)", "unscored_either"), ("compared", "compared"))
    out.append("<h3>Answers matched on (id, model, condition)</h3>")
    out.append(_table(["answers", "n"], [[_e(label), _cell(key, [*base, "counts", key], k[key], f"{k[key]:,}")]
                                         for label, key in labels], attrs=' class="run-counts"'))
    out.append("</section>")
    return "".join(out)


def settings_html(rows: Sequence[Mapping[str, Any]], *, all_criteria: bool = False) -> str:
    """The "Prompt settings" part of the breakdowns: per model (and judge, condition), each prompt setting of
    ``judgekit generate`` against the baseline setting, paired by item: the two means, the gain with its
    bootstrap interval and the paired test's p. ``rows``: ``Report.to_dict()["settings"]``
    (:func:`judgekit.stats.settings.setting_rows_to_dicts`); the rows pooling categories, overall and pass
    only unless ``all_criteria``."""
    if not rows:
        return ""
    base: JsonPath = ["settings"]
    header = ["model", "judge", "condition", "setting", "baseline", "metric", "pairs", "baseline value",
              "setting value", "gain [95 % CI]", "test", "p", "p adj", "note"]
    body = []
    for i, r in enumerate(rows):
        if r["category"] != "all" or (not all_criteria and r["criterion"] not in ("overall", "pass")):
            continue
        at: JsonPath = [*base, i]
        pct = r["criterion"] == "pass"

        def val(x: Any, pct: bool = pct) -> str:
            return _pct(x) if pct else _fmt(x)

        gain = "-" if r["diff"] is None else (f"{100 * r['diff']:+.1f} pp" if pct else f"{r['diff']:+.3f}")
        ci = _ci_text(r["ci_low"], r["ci_high"], pct=pct, signed=True, digits=1 if pct else 3)
        star = " *" if r.get("significant_adjusted") else ""
        body.append([_cell(k, [*at, k], r[k], r[k], text=True)
                     for k in ("model", "judge", "condition", "setting", "baseline", "criterion")]
                    + [_cell("n", [*at, "n"], r["n"], str(r["n"])),
                       _cell("baseline_value", [*at, "baseline_value"], r["baseline_value"], val(r["baseline_value"])),
                       _cell("value", [*at, "value"], r["value"], val(r["value"])),
                       _with_ci("diff", at, "diff", ("ci_low", "ci_high"), r, gain, ci + star),
                       _cell("test", [*at, "test"], r["test"], r["test"] or "-", text=True),
                       _cell("p_value", [*at, "p_value"], r["p_value"], _fmt(r["p_value"])),
                       _cell("p_adjusted", [*at, "p_adjusted"], r.get("p_adjusted"), _fmt(r.get("p_adjusted"))),
                       _cell("note", [*at, "note"], r["note"], r["note"], text=True)])
    return ("<h3>Prompt settings: gain over the baseline setting (paired)</h3>"
            + _table(header, body, text_columns=6, attrs=' class="settings"')
            + '<p class="note">Each setting of <code>judgekit generate --shots/--knowledge</code> is its own entry '
              '"MODEL [SETTING]" in the tables above; here it is paired with the baseline setting (0-shot when '
              'present) on the same items, by the same judge, in the same condition. Gain = setting - baseline, '
              '95 % paired percentile bootstrap (not adjusted); Wilcoxon signed-rank (Pratt) for scores, McNemar '
              f'exact for pass; * adjusted p &lt; 0.05. Unscored pairs are dropped. {_e(rows[0].get("family", ""))}.'
              '</p>')


def checks_html(rows: Sequence[Mapping[str, Any]]) -> str:
    """The "Fact checks" section: per model and check of the rubric (:mod:`judgekit.judging.checks`), passed /
    checked with the 95 % Wilson interval and the most frequent reason of failure; gating checks are marked and
    ``(any gate)`` counts the answers that passed every gate. ``rows``: ``Report.to_dict()["checks"]``
    (:func:`judgekit.reporting.tables.check_rates`)."""
    if not rows:
        return ""
    base: JsonPath = ["checks"]
    body = []
    for i, r in enumerate(rows):
        at: JsonPath = [*base, i]
        top = r["failed_reasons"][0] if r["failed_reasons"] else None
        name = r["check"] + (" (gate)" if r["gate"] and r["check"] != "(any gate)" else "")
        body.append([_cell("model", [*at, "model"], r["model"], r["model"], text=True),
                     _cell("check", [*at, "check"], r["check"], name, text=True),
                     _cell("passed", [[*at, "passed"], [*at, "checked"]], [r["passed"], r["checked"]],
                           f"{r['passed']} / {r['checked']}"),
                     _with_ci("rate", at, "rate", "wilson_ci", r, _pct(r["rate"]), _ci_text(*r["wilson_ci"], pct=True)),
                     _cell("failed_reasons", [*at, "failed_reasons"], r["failed_reasons"],
                           f"{top[0]} ({top[1]}x)" if top else "-", text=True)])
    return ('<section id="checks"><h2>Fact checks</h2><p>Deterministic checks of the rubric, run on every answer '
            'without a judge call and never shown to the judge unless the rubric says so. A failed gating check '
            'fails the answer whatever its scores; a weighted check is mixed into overall.</p>'
            + _table(["model", "check", "passed / checked", "rate [95 % Wilson]", "most frequent failure"], body,
                     text_columns=2, attrs=' class="checks"')
            + "</section>")
