"""The console tables (rich) of a judging run: the summary tables ``judgekit judge`` and ``judgekit report``
print, and the tables of ``judgekit agree``. Building a table prints nothing: the CLI prints them and
:func:`judgekit.reporting.markdown.table_markdown` turns them into Markdown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from judgekit.io.records import Judgment


def fmt(x: float | None, digits: int = 2) -> str:
    """A number as the tables show it: ``-`` for None or NaN."""
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def summary_groupings(judgments: Sequence[Judgment]) -> list[tuple[str, ...]]:
    """The summary tables' groupings: per model, and per model x category / x condition when they vary."""
    groupings: list[tuple[str, ...]] = [("model",)]
    if any(j.category for j in judgments):
        groupings.append(("model", "category"))
    if len({j.condition for j in judgments}) > 1:
        groupings.append(("model", "condition"))
    return groupings


def summary_tables(judgments: Sequence[Judgment], criteria: Sequence[str]) -> list[Any]:
    """Tables per model, per model x category and per model x condition (the latter two when present): n,
    unscored, the mean of each criterion and of overall (over scored judgments), the pass rate with its 95%
    Wilson interval."""
    from rich.table import Table

    from judgekit.stats.aggregate import summarize

    tables = []
    for by in summary_groupings(judgments):
        table = Table(title="by " + " x ".join(by), title_justify="left")
        for b in by:
            table.add_column(b)
        table.add_column("n", justify="right")
        table.add_column("unscored", justify="right")
        for c in criteria:
            table.add_column(c, justify="right")
        table.add_column("overall", justify="right")
        table.add_column("pass rate [95% CI]", justify="right", no_wrap=True)
        for g in summarize(judgments, by, criteria):
            rate = "-" if g.scored == 0 else (
                f"{100 * g.pass_rate:.1f}% [{100 * g.pass_ci[0]:.1f}-{100 * g.pass_ci[1]:.1f}]")
            table.add_row(*g.key, str(g.n), str(g.unscored), *(fmt(g.means.get(c, math.nan)) for c in criteria),
                          fmt(g.mean_overall), rate)
        tables.append(table)
    return tables


def agreement_renderables(section: Any) -> list[Any]:
    """What ``judgekit agree`` shows for one criterion, in order: the header line (console markup), the
    statistics table, the inter-human ceiling table (when there are several raters) and the PPI pass rates
    (when computed). ``section`` is a :class:`judgekit.api.CriterionAgreement`."""
    from rich.table import Table

    rep = section.report
    shown: list[Any] = []
    shown.append(f"[bold]{section.criterion}[/bold]: {rep.n_items} responses rated by {len(section.raters)} human(s) "
                 f"({', '.join(section.raters)}); {section.kind} ({'; '.join(section.notes)}); correlation levels: "
                 f"{', '.join(section.levels)}"
                 + (f" (summary = within each {section.group_by}, averaged)" if section.grouped else "")
                 + (f"; {section.dropped_unscored} rated response(s) left out: the judge's reply was unscored"
                    if section.dropped_unscored else ""))
    table = Table(title=f"{section.criterion}: judge vs humans; {100 * rep.confidence:.0f}% intervals: "
                        f"{rep.resampling}", title_justify="left")
    for col in ("statistic", "compares", "level", "value", "CI", "n", "note"):
        table.add_column(col, overflow="fold")

    def num(x: float) -> str:
        return fmt(x, 3)

    for e in rep.entries:
        ci = "-" if math.isnan(e.ci_low) else f"[{num(e.ci_low)}, {num(e.ci_high)}]"
        table.add_row(e.name, e.compares, e.level, num(e.value), ci, str(e.n_items), e.note)
    shown.append(table)
    c = rep.ceiling
    if c is not None and c.raters:
        ct = Table(title=f"inter-human ceiling: each human vs the {c.reference} of the others, and the judge against "
                         f"the same references on the same items", title_justify="left")
        ct.add_column("rater")
        ct.add_column("items", justify="right")
        for st in c.statistics:
            ct.add_column(f"{st} human", justify="right")
            ct.add_column(f"{st} judge", justify="right")
        for r in c.raters:
            ct.add_row(r.rater, str(r.n_items), *(x for st in c.statistics for x in (num(r.human.get(st, math.nan)),
                                                                                    num(r.judge.get(st, math.nan)))))
        ct.add_row("mean (ceiling)", str(c.n_items), *(x for st in c.statistics
                                                      for x in (num(c.ceiling.get(st, math.nan)),
                                                                num(c.judge_loo.get(st, math.nan)))))
        shown.append(ct)
    if section.ppi:
        from judgekit.stats.passrate import ppi_table

        shown.append(ppi_table(section.ppi))
    return shown


def check_rates(judgments: Sequence[Judgment]) -> list[dict[str, Any]]:
    """The rubric's fact checks (:mod:`judgekit.judging.checks`) per model, as JSON-ready rows: ``model``,
    ``check``, ``gate`` (the check gates the pass), ``checked`` (answers the check ran on), ``passed``, ``rate``
    (passed / checked) with its 95 % Wilson interval ``wilson_ci``, and ``failed_reasons`` (the reasons of the
    failures, most frequent first, with their counts). Checks do not depend on the judge: an answer judged by
    several judges (or as a panel) counts once, by ``(id, model, condition)``. The last row of each model with
    a gating check, ``check`` = ``"(any gate)"``, counts the answers failed by at least one gate. [] when the
    judgments carry no checks. Models in name order, checks in rubric order."""
    from collections import Counter

    from judgekit.stats.aggregate import wilson_interval

    answers: dict[tuple[str, str, str], Judgment] = {}
    for j in judgments:
        if j.checks:
            answers.setdefault((j.model, j.id, j.condition or ""), j)
    names = list(dict.fromkeys(n for j in answers.values() for n in j.checks))
    out: list[dict[str, Any]] = []
    for model in sorted({m for m, _, _ in answers}):
        mine = [j for (m, _, _), j in answers.items() if m == model]
        gates = False
        for name in names:
            got = [j.checks[name] for j in mine if name in j.checks]
            if not got:
                continue
            gate = any(c.gate for c in got)
            gates |= gate
            passed = sum(c.passed for c in got)
            reasons = Counter(c.reason for c in got if not c.passed and c.reason)
            out.append({"model": model, "check": name, "gate": gate, "checked": len(got), "passed": passed,
                        "rate": passed / len(got), "wilson_ci": list(wilson_interval(passed, len(got))),
                        "failed_reasons": [[r, k] for r, k in reasons.most_common()]})
        if gates:
            failed = sum(j.gate_failed for j in mine)
            out.append({"model": model, "check": "(any gate)", "gate": True, "checked": len(mine),
                        "passed": len(mine) - failed, "rate": (len(mine) - failed) / len(mine),
                        "wilson_ci": list(wilson_interval(len(mine) - failed, len(mine))), "failed_reasons": []})
    return out


def checks_table(rows: Sequence[dict[str, Any]]) -> Any:
    """The rich table of :func:`check_rates`: model, check (``gate`` marked), passed / checked, rate with its 95 %
    Wilson interval, the most frequent reason of failure."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="Fact checks (deterministic, no judge call): passed / checked per model", title_justify="left",
              caption="A failed gating check fails the answer whatever its scores; (any gate): answers that "
                      "passed every gate.", caption_justify="left")
    for name, right in (("model", False), ("check", False), ("passed", True), ("rate [95% Wilson]", True),
                        ("most frequent failure", False)):
        t.add_column(name, justify="right" if right else "left", overflow="fold")
    for r in rows:
        lo, hi = r["wilson_ci"]
        top = r["failed_reasons"][0] if r["failed_reasons"] else None
        t.add_row(escape(r["model"]), escape(r["check"]) + (" (gate)" if r["gate"] and r["check"] != "(any gate)"
                                                            else ""),
                  f"{r['passed']} / {r['checked']}", f"{100 * r['rate']:.1f}% [{100 * lo:.1f}-{100 * hi:.1f}]",
                  escape(f"{top[0]} ({top[1]}x)") if top else "-")
    return t
