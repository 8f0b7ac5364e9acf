"""The HTML report (``judgekit report --html``): one self-contained page a leaderboard maintainer can publish.

The page needs no network and runs nothing: no script, no external stylesheet, font or image; the CSS is
inline, the plots inline SVG (:mod:`judgekit.reporting.plots`), the example images downscaled data URLs.
Every piece of text that comes from the data (questions, references, answers, rationales, model and judge
names, ids, reasons) goes through :func:`html.escape`, so an answer holding ``<script>`` shows as text.

Sections: the leaderboard (:mod:`judgekit.reporting.leaderboard`), plots, breakdowns by category and by
condition with the paired robustness rows, the judge card (what the results file knows of the judge; with
``--human``, its agreement with human ratings, see :mod:`judgekit.reporting.html_extra`), the comparison with
another run (``--compare``) and an example browser (lowest-scored, most disputed and a seeded random sample).
The numbers of the leaderboard
carry ``data-field`` / ``data-value`` attributes holding the JSON values of ``Report.to_dict()["leaderboard"]``
so that a reader (or a test) can check them against the JSON.
"""

from __future__ import annotations

import base64
import json
import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from judgekit.io.records import Judgment, Response
from judgekit.judging.rubric import Rubric

#: Examples shown per kind (lowest-scored, most disputed, random).
EXAMPLES = 5
#: The longest side of an example image, in pixels.
IMAGE_SIDE = 256

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:1rem 2rem;color:#1d2330;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:2px solid #dde3ee;padding-bottom:.2rem;margin-top:2.2rem}
nav a{margin-right:1rem}table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #dde3ee;padding:.25rem .5rem;text-align:right;vertical-align:top;white-space:nowrap}
.scroll{overflow-x:auto;max-width:100%}
th{background:#f2f5fa}td.t,th.t{text-align:left}tr:nth-child(even) td{background:#fafbfd}
.note{color:#555;font-size:.88rem}.muted{color:#888}.star{color:#b3261e;font-weight:600}
figure{display:inline-block;margin:.5rem 1rem 1rem 0;vertical-align:top}figcaption{font-size:.85rem;color:#555}
figure svg{max-width:100%;height:auto}dl.card{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dl.card dt{font-weight:600}dl.card dd{margin:0}details{border:1px solid #dde3ee;border-radius:6px;
margin:.4rem 0;padding:.3rem .7rem}summary{cursor:pointer}pre{white-space:pre-wrap;word-break:break-word;
background:#f6f8fb;padding:.5rem;border-radius:4px;margin:.2rem 0 .6rem;font-size:.88rem}
img.ex{max-width:256px;max-height:256px;margin:.3rem .5rem .3rem 0;border:1px solid #dde3ee}
h4{margin:1.2rem 0 .2rem}td.wrap{white-space:normal;min-width:12rem}
th{white-space:normal;min-width:3rem}
"""


def _e(value: Any) -> str:
    """Any value as escaped HTML text (None as an empty string)."""
    return "" if value is None else escape(str(value), quote=True)


def _num(x: float | None, digits: int = 2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


def _ci(pair: Sequence[float | None] | None) -> str:
    if not pair or pair[0] is None or pair[1] is None:
        return "-"
    return f"[{100 * pair[0]:.1f}, {100 * pair[1]:.1f}]"


def _interval(pair: Sequence[float | None]) -> str:
    """[low, high] of a mean, 2 decimals."""
    return f"[{_num(pair[0])}, {_num(pair[1])}]"


def _rank_text(rank: int, low: int, high: int) -> str:
    """A rank and its range: "2 (1-3)", or "1" when the range is that rank alone."""
    return str(rank) if low == high == rank else f"{rank} ({low}-{high})"


def _cell(field: str, value: Any, shown: str, *, text: bool = False) -> str:
    """A table cell carrying its JSON value in ``data-value``."""
    cls = ' class="t"' if text else ""
    return f'<td{cls} data-field="{_e(field)}" data-value="{_e(json.dumps(value))}">{_e(shown)}</td>'


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], *, text_columns: int = 1, attrs: str = "") -> str:
    """A table of already escaped cells (``<td>...`` strings or plain escaped text)."""
    # headers wrap at spaces, and after the underscores of criterion names (technical_accuracy)
    labels = [_e(h).replace("_", "_<wbr>").replace(" %", "&nbsp;%") for h in header]
    all_rows = [list(r) for r in rows]
    # a header sits like its column: left over the leading text columns and over any column of text cells
    # (``_cell(..., text=True)``: a note, a test's name, the most frequent failure), right over numbers
    text = set(range(text_columns)) | {i for r in all_rows for i, c in enumerate(r) if c.startswith('<td class="t"')}
    head = "".join(f'<th{" class=t" if i in text else ""}>{h}</th>' for i, h in enumerate(labels))
    body = []
    for row in all_rows:
        cells = [c if c.startswith("<td") else f'<td{" class=t" if i < text_columns else ""}>{c}</td>'
                 for i, c in enumerate(row)]
        body.append("<tr>" + "".join(cells) + "</tr>")
    # in a scrolling box: a table with many criteria is wider than the page
    table = f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


# ---------------------------------------------------------------------------------------------- sections

def _leaderboard(rows: Sequence[Mapping[str, Any]], criteria: Sequence[str]) -> str:
    out = ['<section id="leaderboard"><h2>Leaderboard</h2>']
    for judge in dict.fromkeys(r["judge"] for r in rows):
        mine = [r for r in rows if r["judge"] == judge]
        out.append(f"<h3>Judge: {_e(judge)}</h3>")
        header = ["rank", "rank range", "model", "pass rate", "Wilson 95 %", "bootstrap 95 %", "mean overall",
                  "overall 95 %", "rank by overall", *criteria, "scored", "unscored", "USD / 1,000", "judge s / 1,000"]
        body = []
        for r in mine:
            body.append([
                _cell("rank", r["rank"], str(r["rank"])),
                _cell("rank_range", [r["rank_low"], r["rank_high"]],
                      str(r["rank_low"]) if r["rank_low"] == r["rank_high"] else f"{r['rank_low']}-{r['rank_high']}"),
                _cell("model", r["model"], r["model"], text=True),
                _cell("pass_rate", r["pass_rate"], _pct(r["pass_rate"])),
                _cell("wilson_ci", r["wilson_ci"], _ci(r["wilson_ci"])),
                _cell("bootstrap_ci", r["bootstrap_ci"], _ci(r["bootstrap_ci"])),
                _cell("mean_overall", r["mean_overall"], _num(r["mean_overall"])),
                _cell("mean_overall_ci", r["mean_overall_ci"], _interval(r["mean_overall_ci"])),
                _cell("overall_rank_range", [r["overall_rank"], r["overall_rank_low"], r["overall_rank_high"]],
                      _rank_text(r["overall_rank"], r["overall_rank_low"], r["overall_rank_high"])),
                *[_cell(f"means.{c}", r["means"].get(c), _num(r["means"].get(c))) for c in criteria],
                _cell("scored", r["scored"], str(r["scored"])), _cell("unscored", r["unscored"], str(r["unscored"])),
                _cell("cost_per_1000", r["cost_per_1000"],
                      "-" if r["cost_per_1000"] is None else f"{r['cost_per_1000']:.4f}"),
                _cell("judge_s_per_1000", r["judge_s_per_1000"], _num(r["judge_s_per_1000"], 1))])
        out.append(_table(header, body, text_columns=0, attrs=f' class="leaderboard" data-judge="{_e(judge)}"'))
    n = rows[0]["n_resamples"] if rows else 0
    out.append(f'<p class="note">Ranked by pass rate (passed / scored; unscored judgments are counted, never '
               f'passed or failed). Rank: 1 + the number of models with a strictly higher pass rate, so ties share '
               f'a rank. Rank range: the 2.5-97.5 % quantiles of the model\'s rank over {n:,} bootstrap resamples '
               f'of the items (the same resample for every model); overlapping ranges are not told apart by the '
               f'data. Intervals: Wilson score and percentile bootstrap, 95 %. Means are over scored judgments; '
               f'"overall 95 %" is the percentile interval of the mean overall over the same resamples, and "rank by '
               f'overall" ranks by mean overall with its range in brackets. USD and judge seconds per 1,000 '
               f'judgments of the model: the priced judgments\' cost and the judge calls\' time (a self-hosted judge '
               f'has no price). Several conditions are pooled.</p>'
               f'</section>')
    return "".join(out)


def _plots(rep: Any, rows: Sequence[Mapping[str, Any]]) -> str:
    from judgekit.reporting import plots

    out = ['<section id="plots"><h2>Plots</h2>']
    judges = list(dict.fromkeys(r["judge"] for r in rows))
    for judge in judges:
        mine = [r for r in rows if r["judge"] == judge]
        models = [r["model"] for r in mine]
        if len(judges) > 1:
            out.append(f"<h3>Judge: {_e(judge)}</h3>")
        means = {r["model"]: {**{c: _nan(v) for c, v in r["means"].items()}, "overall": _nan(r["mean_overall"])}
                 for r in mine}
        overall = {m: [j.overall for j in rep.judgments if j.judge == judge and j.model == m
                       and j.status == "scored" and j.overall is not None] for m in models}
        figs = [("Pass rate per model with its 95 % Wilson interval",
                 plots.pass_rates(models, [_nan(r["pass_rate"]) for r in mine],
                                  [_nan(r["wilson_ci"][0]) for r in mine], [_nan(r["wilson_ci"][1]) for r in mine])),
                ("Per-criterion profile: mean score of each criterion",
                 plots.criterion_profile(models, [*rep.criteria, "overall"], means)),
                ("Distribution of the overall score (box: quartiles; triangle: mean)",
                 plots.distributions(models, overall))]
        lines = _slope_lines(rep.robustness or [], judge)
        if lines:
            figs.append(("Clean vs degraded: mean overall of the paired answers", plots.slopes(lines)))
        out += [f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>" for caption, svg in figs]
    if getattr(rep, "agreement", None) is not None:
        from judgekit.reporting.html_extra import agreement_figure

        fig = agreement_figure(rep.agreement)
        if fig is not None:
            out.append(f'<figure class="heatmap">{fig[1]}<figcaption>{_e(fig[0])}</figcaption></figure>')
    out.append("</section>")
    return "".join(out)


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _slope_lines(robustness: Sequence[Any], judge: str) -> list[tuple[str, float, float]]:
    """(label, clean, degraded) of the overall rows over all categories: the pooled row of each model when
    there is one, else one line per model and condition."""
    rows = [r for r in robustness if r.judge == judge and r.criterion == "overall" and r.category == "all"
            and not (math.isnan(r.clean) or math.isnan(r.degraded))]
    pooled = [r for r in rows if r.condition == "degraded (all)"]
    chosen = pooled or rows
    return [(r.model if pooled else f"{r.model}: {r.condition}", r.clean, r.degraded) for r in chosen]


def _summary_table(entries: Sequence[Mapping[str, Any]], criteria: Sequence[str]) -> str:
    if not entries:
        return ""
    keys = list(entries[0]["key"])
    header = [*keys, "n", "scored", "unscored", *criteria, "mean overall", "pass rate", "Wilson 95 %"]
    body = [[*(_e(e["key"][k]) for k in keys), str(e["n"]), str(e["scored"]), str(e["unscored"]),
             *(_num(e["means"].get(c)) for c in criteria), _num(e["mean_overall"]), _pct(e["pass_rate"]),
             _ci(e["wilson_ci"])] for e in entries]
    return _table(header, body, text_columns=len(keys))


def _breakdowns(rep: Any) -> str:
    summary = rep.summary()
    out = ['<section id="breakdowns"><h2>Breakdowns</h2>']
    for grouping, title in (("model x category", "By category"), ("model x condition", "By condition")):
        if grouping in summary:
            out += [f"<h3>{title}</h3>", _summary_table(summary[grouping], rep.criteria)]
    out.append("<h3>Robustness: degraded vs clean (paired)</h3>")
    from judgekit.stats.robustness import family_legend

    rows = rep.robustness
    if not rows:
        out.append(f'<p class="note">{_e(rep.robustness_note)}</p>')
    else:
        keep = None if rep.all_criteria else ("overall", "pass")
        shown = [r for r in rows if keep is None or r.criterion in keep]
        header = ["model", "judge", "category", "condition", "metric", "pairs", "clean", "degraded", "Δ",
                  "95 % CI of Δ", "test", "p", "p adj", "note"]
        body = []
        for r in shown:
            ci = "-" if math.isnan(r.ci_low) else f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
            star = ' <span class="star">*</span>' if r.significant_adjusted else ""
            body.append([_e(r.model), _e(r.judge), _e(r.category), _e(r.condition), _e(r.criterion), str(r.n),
                         _num(r.clean, 3), _num(r.degraded, 3), _e(f"{r.diff:+.3f}" if not math.isnan(r.diff) else "-"),
                         ci + star, _e(r.test or "-"), _num(r.p_value, 4), _num(r.p_adjusted, 4), _e(r.note)])
        out.append(_table(header, body, text_columns=5))
        out.append('<p class="note">Pairs: the baseline and the degraded judgment of the same question; a pair '
                   'with an unscored side is dropped. Δ = degraded - clean with a 95 % paired percentile bootstrap '
                   'interval; Wilcoxon signed-rank (Pratt) for scores, McNemar exact for pass. '
                   '<span class="star">*</span> adjusted p &lt; 0.05 (the interval and p are not adjusted); '
                   f'{_e(family_legend(rows, sum(not math.isnan(r.p_value) for r in shown)) or "p not adjusted")}.'
                   '</p>')
    if getattr(rep, "settings", None):  # prompt settings of judgekit generate (judgekit.stats.settings)
        from judgekit.reporting.html_extra import settings_html
        from judgekit.stats.settings import setting_rows_to_dicts

        out.append(settings_html(setting_rows_to_dicts(rep.settings), all_criteria=rep.all_criteria))
    out.append("</section>")
    return "".join(out)


def _units(judgments: Iterable[Judgment]) -> Iterable[Judgment]:
    """The judgments that own samples: the panel's members, or the judgment itself."""
    for j in judgments:
        if j.panel:
            yield from j.panel
        else:
            yield j


def _sample_passed(rubric: Rubric, scores: Mapping[str, float]) -> bool:
    """The rubric's pass verdict on one sample's scores (as the runner applies it to reduced scores)."""
    values = {k: float(v) for k, v in scores.items() if k != "overall"}
    values["overall"] = rubric.compute_overall({k: float(v) for k, v in scores.items()})
    return rubric.passed(values)


def judge_card(judgments: Sequence[Judgment], rubric: Rubric | None = None) -> list[tuple[str, str]]:
    """What the results know of the judge, as (label, plain text) pairs: judges, rubric, settings, samples,
    unscored rate and reasons, self-consistency across samples (mean spread; share of judgments whose pass
    verdict differs between samples, when ``rubric`` is known), cost and time."""
    from judgekit import __version__

    n = len(judgments)
    card: list[tuple[str, str]] = [("judge(s)", ", ".join(sorted({j.judge for j in judgments})))]
    members = sorted({m.judge for j in judgments for m in j.panel})
    if members:
        card.append(("panel members", ", ".join(members)))
    rubrics = sorted({(j.rubric, j.rubric_version) for j in judgments if j.rubric})
    card.append(("rubric", ", ".join(f"{name} version {version or '-'}" for name, version in rubrics)
                 or "not recorded"))
    if rubric is not None and (rubric.name, rubric.version) in rubrics:
        card.append(("rubric sha256", f"{rubric.fingerprint} (of the rubric given, or the shipped one of this name "
                                      f"and version; the store keys hold it)"))
    units = list(_units(judgments))
    for label, attr in (("temperature", "temperature"), ("seed", "seed")):
        values = sorted({getattr(u, attr) for u in units if getattr(u, attr) is not None})
        card.append((label, ", ".join(f"{v:g}" for v in values) or "not recorded"))
    samples = Counter(len(u.samples) for u in units)
    card.append(("samples per judgment", "; ".join(f"{k}: {v:,} judgment{'s' if v != 1 else ''}"
                                                  for k, v in sorted(samples.items()))))
    card += _reduce_lines(judgments, units)
    from judgekit.reporting.selfgrading import card_line

    card.append(card_line(judgments))
    card.append(("judgekit version", f"{__version__} (this report)"))
    unscored = [j for j in judgments if j.status != "scored"]
    card.append(("unscored", f"{len(unscored):,} of {n:,} ({_pct(len(unscored) / n if n else math.nan)})"))
    reasons = Counter((j.reason or "no reason given") for j in unscored)
    if reasons:
        card.append(("unscored reasons", "; ".join(f"{r} ({c:,})" for r, c in reasons.most_common())))
    multi = [u for u in units if sum(s.status == "scored" for s in u.samples) > 1]
    if multi:
        spreads = [v for u in multi for v in u.spread.values()]
        card.append(("self-consistency", f"{len(multi):,} judgments with several valid samples; mean spread "
                                         f"(population SD of a criterion across samples) {_num(_mean(spreads), 3)}"))
        if rubric is not None:
            flips = sum(len({_sample_passed(rubric, s.scores) for s in u.samples if s.status == "scored"}) > 1
                        for u in multi)
            card.append(("pass verdict differs between samples",
                         f"{flips:,} of {len(multi):,} ({_pct(flips / len(multi))})"))
        else:
            card.append(("pass verdict differs between samples", "not computed: the rubric is not known"))
    else:
        card.append(("self-consistency", "one sample per judgment: not measured"))
    costs = [j.cost for j in judgments if j.cost is not None]
    if costs:
        card.append(("cost per 1,000 judgments", f"USD {1000 * math.fsum(costs) / len(costs):.4f}"))
    card.append(("judge time per 1,000 judgments", f"{1000 * _mean([j.latency_s for j in judgments]):.1f} s"
                 if n else "-"))
    return card


_NOT_RECORDED = "not recorded (results file written before judgekit recorded it)"


def _reduce_lines(judgments: Sequence[Judgment], units: Sequence[Judgment]) -> list[tuple[str, str]]:
    """The card's "reduce" line (how several samples of a judge were reduced: "mean over 5 samples") and, for
    panels, its "panel" line ("mean of 3 judges, quorum 2"); "not recorded" for files written before judgekit
    recorded them. One sample and no panel: nothing was reduced."""
    multi = Counter((u.reduce, len(u.samples)) for u in units if len(u.samples) > 1)
    if not multi:
        lines = [("reduce", "one sample per judgment: nothing reduced")]
    else:
        lines = [("reduce", "; ".join((f"{how} over {k} samples" if how else f"{_NOT_RECORDED}, {k} samples")
                                      + (f" ({v:,} judgments)" if len(multi) > 1 else "")
                                      for (how, k), v in sorted(multi.items(), key=lambda kv: (-kv[1], str(kv[0])))))]
    panels = Counter((j.panel_reduce, len(j.panel), j.panel_quorum) for j in judgments if j.panel)
    if panels:
        lines.append(("panel", "; ".join((f"{how} of {k} judges, quorum {q}" if how else f"{_NOT_RECORDED}, {k} judges")
                                         + (f" ({v:,} judgments)" if len(panels) > 1 else "")
                                         for (how, k, q), v in sorted(panels.items(), key=lambda kv: -kv[1]))))
    return lines


def _mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs) if xs else math.nan


def _card(judgments: Sequence[Judgment], rubric: Rubric | None, agreement: Any = None,
          probes: Mapping[str, Any] | None = None) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in judge_card(judgments, rubric))
    if agreement is None:
        people = ('<p class="note">Agreement with people: not measured (pass human ratings: '
                  '<code>judgekit report --human RATINGS</code>).</p>')
    else:
        from judgekit.reporting.html_extra import agreement_html

        people = agreement_html(agreement, agreement.to_dict())
    if probes is None:
        bias = ('<p class="note">Bias probes: not measured (run <code>judgekit probe RESPONSES --rubric R --judge J '
                '--out PROBES.json</code> and pass <code>--probes PROBES.json</code>).</p>')
    else:
        from judgekit.reporting.probes import probes_html

        recorded = {(j.rubric, j.rubric_version) for j in judgments}
        bias = probes_html(probes, judges=sorted({j.judge for j in judgments}),
                           rubric=recorded.pop() if len(recorded) == 1 else None)
    from judgekit.reporting.selfgrading import self_grading_of

    found = self_grading_of(judgments, rubric)
    own = found.html() if found is not None else ""
    return (f'<section id="judge"><h2>Judge card</h2><dl class="card">{items}</dl><p class="note">From what the '
            f'results file records.</p>{own}{bias}{people}</section>')


def image_data_url(path: str | Path, side: int = IMAGE_SIDE) -> str | None:
    """The image at ``path`` downscaled to at most ``side`` pixels a side, as a JPEG data URL; None when the file
    is missing, not an image within the pixel cap, or cannot be decoded."""
    from judgekit.io.images import image_problem

    p = Path(path)
    if not p.is_file() or image_problem(p) is not None:
        return None
    import cv2

    img = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if img is None:
        return None
    h, w = img.shape[:2]
    if max(h, w) > side:
        scale = side / max(h, w)
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii") if ok else None


def _order(j: Judgment) -> tuple[str, str, str, str]:
    return (j.id, j.model, j.condition or "", j.judge)


def _disputed(j: Judgment) -> float:
    return max(j.spread.values(), default=0.0)


def pick_examples(judgments: Sequence[Judgment], *, k: int = EXAMPLES, seed: int = 0) -> dict[str, list[Judgment]]:
    """The examples shown: the ``k`` lowest-scored (by overall), the ``k`` most disputed (largest spread of a
    criterion across samples or panel judges; only those with some spread) and ``k`` drawn at random
    (``random.Random(seed)``, from the judgments in file order)."""
    scored = [j for j in judgments if j.status == "scored" and j.overall is not None]
    lowest = sorted(scored, key=lambda j: (j.overall, _order(j)))[:k]
    disputed = sorted((j for j in scored if _disputed(j) > 0), key=lambda j: (-_disputed(j), _order(j)))[:k]
    drawn = random.Random(seed).sample(list(judgments), min(k, len(judgments)))
    return {"lowest-scored": lowest, "most disputed": disputed, "random sample": drawn}


def _example(j: Judgment, response: Response | None, criteria: Sequence[str],
             human: tuple[str, float, float] | None = None) -> str:
    cond = f" / {j.condition}" if j.condition else ""
    verdict = ("unscored" if j.status != "scored" else f"overall {_num(j.overall)} - "
               + ("pass" if j.passed else "fail"))
    head = f"{_e(j.id)} - {_e(j.model)}{_e(cond)} - {_e(verdict)}"
    parts = [f"<details><summary>{head}</summary>"]
    if response is not None:
        imgs = [u for u in (image_data_url(p) for p in response.images) if u]
        parts.append(f"<p><b>Question</b></p><pre>{_e(response.question)}</pre>")
        parts += [f'<img class="ex" alt="image of item {_e(j.id)}" src="{u}">' for u in imgs]
        parts.append(f"<p><b>Reference</b></p><pre>{_e(response.reference)}</pre>")
        parts.append(f"<p><b>Answer</b></p><pre>{_e(response.response)}</pre>")
    else:
        parts.append('<p class="muted">Question, reference and answer: not given (pass the responses file).</p>')
    if j.status == "scored":
        scores = ", ".join(f"{c} {_num(j.scores.get(c))}" + (f" (spread {_num(j.spread[c])})" if j.spread.get(c)
                                                                else "") for c in criteria)
        parts.append(f"<p><b>Scores</b>: {_e(scores)}; judge {_e(j.judge)}</p>")
    else:
        parts.append(f"<p><b>Unscored</b>: {_e(j.reason)}</p>")
    if human is not None:
        parts.append(f"<p><b>People</b>: mean rating {_num(human[2])} on {_e(human[0])} (the judge: "
                     f"{_num(human[1])})</p>")
    if j.rationale:
        parts.append(f"<p><b>Rationale</b></p><pre>{_e(j.rationale)}</pre>")
    parts.append("</details>")
    return "".join(parts)


def human_gaps(agreement: Any) -> tuple[str, dict[tuple[str, str, str], tuple[float, float]]]:
    """Per answer rated by people, (judge value, mean human rating) on the overall criterion of ``agreement``
    (or the first compared one), keyed by (id, model, condition or ""); with the criterion's name."""
    import numpy as np

    sections = list(getattr(agreement, "sections", None) or [])
    chosen = next((c for c in sections if c.criterion in ("overall", "pass")), sections[0] if sections else None)
    jn = getattr(chosen, "joined", None)
    if jn is None:
        return "", {}
    out: dict[tuple[str, str, str], tuple[float, float]] = {}
    for i, key in enumerate(zip(jn.ids, jn.models, jn.conditions, strict=True)):
        row = jn.humans[i][~np.isnan(jn.humans[i])]
        if row.size and not math.isnan(float(jn.judge[i])):
            out[(key[0], key[1], key[2] or "")] = (float(jn.judge[i]), float(row.mean()))
    return str(chosen.criterion), out


def _examples(judgments: Sequence[Judgment], responses: Sequence[Response] | None, criteria: Sequence[str],
              seed: int, agreement: Any = None) -> str:
    by_uid = {(r.id, r.model, r.condition or ""): r for r in responses or []}
    out = ['<section id="examples"><h2>Examples</h2>']
    picked = pick_examples(judgments, seed=seed)
    criterion, gaps = human_gaps(agreement) if agreement is not None else ("", {})
    if agreement is not None:
        ranked = sorted((j for j in judgments if (j.id, j.model, j.condition or "") in gaps),
                        key=lambda j: (-abs(gaps[(j.id, j.model, j.condition or "")][0]
                                            - gaps[(j.id, j.model, j.condition or "")][1]), _order(j)))
        title = f"largest judge-human gap ({criterion}: |judge - mean human rating|)"
        picked = {**{k: v for k, v in picked.items() if k != "random sample"},
                  title: [j for j in ranked[:EXAMPLES]
                          if gaps[(j.id, j.model, j.condition or "")][0]
                          != gaps[(j.id, j.model, j.condition or "")][1]],
                  "random sample": picked["random sample"]}
    for title, chosen in picked.items():
        out.append(f"<h3>{_e(title.capitalize())}</h3>")
        if not chosen:
            out.append('<p class="note">None.</p>')
        for j in chosen:
            uid = (j.id, j.model, j.condition or "")
            out.append(_example(j, by_uid.get(uid), criteria, (criterion, *gaps[uid]) if uid in gaps else None))
    out.append("</section>")
    return "".join(out)


def render(rep: Any, leaderboard: Sequence[Mapping[str, Any]], *, responses: Sequence[Response] | None = None,
           rubric: Rubric | None = None, seed: int = 0) -> str:
    """The HTML page of a report (``rep``: a :class:`judgekit.api.reports.Report`), its ``leaderboard`` rows
    (:func:`judgekit.reporting.leaderboard.leaderboard`), the ``responses`` judged (question, reference,
    answer and images of the examples; optional) and the ``rubric`` (the pass rule, for the samples' pass
    verdicts; optional). The same input gives the same bytes."""
    from judgekit import __version__

    js = rep.judgments
    agreement, comparison = getattr(rep, "agreement", None), getattr(rep, "comparison", None)
    probes = getattr(rep, "probes", None)
    source = getattr(rep, "label", None) or rep.source or "judgments given in memory"
    scored = sum(j.status == "scored" for j in js)
    head = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>judgekit report: {_e(source)}</title><style>{_CSS}</style></head><body>")
    intro = (f"<header><h1>judgekit report</h1><p>{_e(source)}: {len(js):,} judgments ({scored:,} scored) of "
             f"{len({j.model for j in js}):,} models on {len({j.id for j in js}):,} questions; criteria "
             f"{_e(', '.join(rep.criteria))}.</p><nav><a href=\"#leaderboard\">Leaderboard</a><a href=\"#plots\">"
             f"Plots</a><a href=\"#breakdowns\">Breakdowns</a><a href=\"#judge\">Judge card</a>"
             + ('<a href="#checks">Fact checks</a>' if getattr(rep, "checks", None) else "")
             + ('<a href="#probes">Bias probes</a>' if probes is not None else "")
             + ('<a href="#agreement">Agreement</a>' if agreement is not None else "")
             + ('<a href="#comparison">Comparison</a>' if comparison is not None else "")
             + '<a href="#examples">Examples</a></nav></header>')
    from judgekit.reporting.html_extra import checks_html

    body = [_leaderboard(leaderboard, rep.criteria), _plots(rep, leaderboard), _breakdowns(rep),
            checks_html(getattr(rep, "checks", [])), _card(js, rubric, agreement, probes)]
    if comparison is not None:
        from judgekit.reporting.html_extra import comparison_html

        body.append(comparison_html(comparison.to_dict()))
    body.append(_examples(js, responses, rep.criteria, seed, agreement))
    foot = (f'<footer><p class="note">Written by judgekit {_e(__version__)} (<code>judgekit report --html</code>); '
            f"a self-contained page: no script, nothing fetched.</p></footer></body></html>\n")
    return head + intro + "".join(body) + foot
