"""Markdown reports of a judging run (``judgekit demo`` writes one; the tables match the CLI's)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from judgekit.io.dataio import atomic_write_text
from judgekit.io.records import Judgment
from judgekit.judging.rubric import Rubric
from judgekit.stats.aggregate import GroupSummary, summarize


@dataclass
class DemoSummary:
    text: str
    ranking: list[str]


def _num(x: float | None, digits: int = 2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _rate(g: GroupSummary) -> str:
    if not g.scored:
        return "-"
    return f"{100 * g.pass_rate:.1f} % [{100 * g.pass_ci[0]:.1f}, {100 * g.pass_ci[1]:.1f}]"


def summary_table(judgments: Sequence[Judgment], by: Sequence[str], criteria: Sequence[str]) -> str:
    """A Markdown table per group of ``by``: n, unscored, mean of each criterion and of overall, and the
    pass rate with its 95 % Wilson interval (over the scored judgments)."""
    head = [*by, "n", "unscored", *criteria, "overall", "pass rate [95 % CI]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for g in summarize(judgments, by, criteria):
        cells = [*g.key, str(g.n), str(g.unscored), *(_num(g.means.get(c, math.nan)) for c in criteria),
                 _num(g.mean_overall), _rate(g)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_markdown(judgments: Sequence[Judgment], criteria: Sequence[str]) -> str:
    """Markdown tables per model, per model x category and per model x condition (the latter two when present),
    as ``judgekit judge`` prints them."""
    parts = ["# judgekit results", "", "## Per model", "", summary_table(judgments, ("model",), criteria), ""]
    if any(j.category for j in judgments):
        parts += ["## Per model and category", "", summary_table(judgments, ("model", "category"), criteria), ""]
    if len({j.condition for j in judgments}) > 1:
        parts += ["## Per model and condition", "", summary_table(judgments, ("model", "condition"), criteria), ""]
    parts += ["Means are over scored answers; the pass rate's interval is the 95 % Wilson score interval.", ""]
    return "\n".join(parts)


def _md_cell(value: Any) -> str:
    from rich.text import Text

    # str cells are console markup, as rich renders them (a literal "[0.6, 0.8]" is not a tag)
    text = value.plain if isinstance(value, Text) else Text.from_markup(str(value)).plain
    return text.replace("|", "\\|").replace("\n", " ")


def table_markdown(table: Any) -> str:
    """A rich :class:`~rich.table.Table` as a Markdown table, with its title as a heading-less bold line
    above and its caption below, so a ``--markdown`` file holds exactly what the console shows."""
    from rich.text import Text

    columns = list(table.columns)
    head = [_md_cell(c.header) for c in columns]
    cells = [list(c.cells) for c in columns]
    lines = []
    if table.title:
        title = table.title.plain if isinstance(table.title, Text) else Text.from_markup(str(table.title)).plain
        lines += [f"**{title}**", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in range(table.row_count):
        lines.append("| " + " | ".join(_md_cell(col[r]) if r < len(col) else "" for col in cells) + " |")
    if table.caption:
        caption = table.caption.plain if isinstance(table.caption, Text) else Text.from_markup(str(table.caption)).plain
        lines += ["", caption]
    return "\n".join(lines) + "\n"


def markup_plain(text: str) -> str:
    """Console markup (``[bold]...[/bold]``) as plain text."""
    from rich.text import Text

    return Text.from_markup(text).plain


def ranking(judgments: Sequence[Judgment], criteria: Sequence[str]) -> list[str]:
    """Models by mean overall score, best first (ties broken by pass rate, then name)."""
    groups = summarize(judgments, ("model",), criteria)
    groups.sort(key=lambda g: (-(g.mean_overall if g.scored else -math.inf), -(g.pass_rate if g.scored else 0),
                               g.key[0]))
    return [g.key[0] for g in groups]


def _agreement_section(spec: Any) -> list[str]:
    from judgekit.judging.backends.local import local_name
    from judgekit.local.models import DEFAULT_NAMES
    from judgekit.local.validate import shipped_figures

    is_default = (local_name(spec.model) in DEFAULT_NAMES and spec.extra.get("local_mode") == "likelihood"
                  and not spec.extra.get("calibration"))
    fig = shipped_figures() if is_default else None
    if fig is None:
        return ["## How far this judge agrees with people", "",
                f"Not measured for `{spec.model}` in {spec.extra.get('local_mode')} mode: run "
                f"`judgekit validate --judge {spec.model}` to measure it.", ""]
    out = ["## How far this judge agrees with people", "",
           "Measured by `judgekit validate` on the shipped dev sets (SummEval: 50 news articles x 16 summaries "
           "with expert ratings; NQ-open: 743 short answers with human correctness labels). Summary-level "
           "Spearman: within each article, averaged over articles. The calibration was fitted on these rows: "
           "the cross-validated column fits on half of the articles/questions and scores the other half.", "",
           "| figure | cross-validated | in-sample | target | reference |", "|---|---|---|---|---|"]
    cv, ins = fig["cross_validated"], fig["in_sample"]
    ref = fig.get("reference", {})
    for dim in ("coherence", "consistency", "fluency", "relevance"):
        crit = ins["summeval"][dim]["criterion"]
        out.append(f"| SummEval {dim} (via {crit}) | {cv['summeval'][dim]['spearman']:.3f} | "
                   f"{ins['summeval'][dim]['spearman']:.3f} | | G-Eval GPT-4 {ref.get(dim, '-')} |")
    out.append(f"| SummEval mean | {cv['summeval']['mean_spearman']:.3f} | {ins['summeval']['mean_spearman']:.3f} "
               f"| >= 0.35 | |")
    out.append(f"| SummEval lowest dimension | {cv['summeval']['min_spearman']:.3f} | "
               f"{ins['summeval']['min_spearman']:.3f} | >= 0.25 | |")
    out.append(f"| NQ AUC of technical_accuracy | {cv['nq']['auc_accuracy']:.3f} | {ins['nq']['auc_accuracy']:.3f} "
               f"| >= 0.85 | |")
    out.append(f"| NQ kappa, pass (overall >= 3) vs human | {cv['nq']['kappa_pass']:.3f} | "
               f"{ins['nq']['kappa_pass']:.3f} | | GPT-4 {ins['nq']['kappa_gpt4']:.3f} on the same rows |")
    speed = ins.get("seconds_per_judgment")
    text = (f"Speed: {speed['nq']:.2f} s per short-answer judgment and {speed['summeval']:.2f} s per judgment "
            f"of a summary against a whole article ({ins.get('threads')} CPU threads); peak memory "
            f"{ins.get('peak_rss_mb', 0):.0f} MiB. ") if speed else ""
    text += ("This judge ranks answers; it is far weaker than a large LLM judge (compare its kappa with GPT-4's), "
             "so use it for offline trials and smoke tests, not for a leaderboard.")
    out += ["", text, ""]
    return out


def checks_table(js: list[Judgment]) -> str:
    """A Markdown table of fact-check outcomes: per model and check, passed / checked (gating checks marked;
    the counts of :func:`judgekit.reporting.tables.check_rates`)."""
    from judgekit.reporting.tables import check_rates

    rows = [r for r in check_rates(js) if r["check"] != "(any gate)"]
    names = list(dict.fromkeys(r["check"] for r in rows))
    gates = {r["check"] for r in rows if r["gate"]}
    head = ["model", *[f"{n} (gate)" if n in gates else n for n in names]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in dict.fromkeys(r["model"] for r in rows):
        got = {r["check"]: r for r in rows if r["model"] == m}
        lines.append("| " + " | ".join([m, *(f"{got[n]['passed']} / {got[n]['checked']}" if n in got else "-"
                                             for n in names)]) + " |")
    return "\n".join(lines)


def demo_summary(report: Any, rubric: Rubric, spec: Any, sample: str = "robustmad_sample") -> DemoSummary:
    """The Markdown summary of a ``judgekit demo`` run (``judgekit demo --forge``: ``sample="forge_sample"``)."""
    js: list[Judgment] = report.judgments
    crit = rubric.criterion_names
    order = ranking(js, crit)
    scored = sum(1 for j in js if j.status == "scored")
    title = "the FORGE-style sample, with fact checks," if sample == "forge_sample" else "the RobustMAD-style sample"
    checks = ["## Fact checks (no judge call)", "",
              "Passed / checked per model. A failed gating check fails the answer whatever its scores; weighted "
              "checks are mixed into overall (README, 'Fact checks (FORGE)').", "", checks_table(js), ""]
    lines = [
        f"# judgekit demo: {title} judged offline", "",
        f"Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by `judgekit demo`.", "",
        f"- Data: judgekit's synthetic sample (`judgekit/sample_data/{sample}`), {len(js)} answers: "
        f"{len({j.id for j in js})} questions x {len({j.model for j in js})} pretend models.",
        f"- Rubric: `{rubric.name}` version {rubric.version}: {', '.join(crit)} and overall, 1-5; "
        f"pass: {rubric.pass_rule}.",
        f"- Judge: `{spec.model}`, {spec.extra.get('local_mode')} mode"
        + (f", calibration {spec.extra['calibration_sha']}" if spec.extra.get("calibration_sha") else "")
        + " (see README, 'Local judges').",
        f"- {scored} scored, {len(js) - scored} unscored; {report.calls_made} judge calls made, "
        f"{report.calls_cached} read from the store; {report.wall_s:.1f} s.", "",
        f"**Ranking by mean overall score:** {' > '.join(order)}.", "",
        "## Per model", "", summary_table(js, ("model",), crit), "",
        "## Per model and category", "", summary_table(js, ("model", "category"), crit), "",
        "Means are over scored answers; the pass rate's interval is the 95 % Wilson score interval.", "",
        *(checks if rubric.checks else []),
        *_agreement_section(spec),
    ]
    return DemoSummary(text="\n".join(lines), ranking=order)


def write_demo_summary(path: str | Path, report: Any, rubric: Rubric, spec: Any,
                       sample: str = "robustmad_sample") -> DemoSummary:
    """Write :func:`demo_summary` to ``path`` atomically."""
    summary = demo_summary(report, rubric, spec, sample)
    atomic_write_text(path, summary.text)
    return summary
