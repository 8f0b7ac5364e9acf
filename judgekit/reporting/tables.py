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
