"""The self-grading section of a report: which judges graded their own model (as the results record it, see
:mod:`judgekit.judging.selfgrading`) and, for panel judgments with other judges, that model's score with the panel
as is and without the self-grading member(s), as a terminal table, Markdown, JSON and HTML.

Conventions: one row per panel (its ``judge`` label) and model under test; ``n`` panel judgments of the model;
"with" is the panel's recorded verdict, "without" the panel recomputed from its other members
(:func:`judgekit.judging.selfgrading.panel_without`). Means of overall and pass rates are over the scored
judgments of each side (a judgment below the smaller panel's quorum is unscored without the member); the pass
rate without is not computed (None, shown "-") when the rubric is not known. Δ = without - with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from judgekit.io.records import Judgment
    from judgekit.judging.rubric import Rubric


#: The columns of the with/without table (terminal, Markdown, HTML).
HEADER = ("model", "panel", "left out", "n", "scored with", "overall with", "pass with", "scored without",
          "overall without", "pass without", "Δ overall", "Δ pass")


@dataclass
class PanelRow:
    """One model's score by one panel, with and without its self-grading member(s)."""

    model: str
    panel: str
    left_out: list[str]
    n: int
    scored_with: int
    overall_with: float | None
    pass_rate_with: float | None
    scored_without: int
    overall_without: float | None
    pass_rate_without: float | None

    @property
    def delta_overall(self) -> float | None:
        """Mean overall without - with (None when a side has no scored judgment)."""
        if self.overall_with is None or self.overall_without is None:
            return None
        return self.overall_without - self.overall_with

    @property
    def delta_pass_rate(self) -> float | None:
        """Pass rate without - with (None when a side is not computed)."""
        if self.pass_rate_with is None or self.pass_rate_without is None:
            return None
        return self.pass_rate_without - self.pass_rate_with

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "delta_overall": self.delta_overall, "delta_pass_rate": self.delta_pass_rate}


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _rate(verdicts: Sequence[bool | None]) -> float | None:
    known = [v for v in verdicts if v is not None]
    return sum(known) / len(known) if known and len(known) == len(verdicts) else None


@dataclass
class SelfGrading:
    """What :func:`self_grading_of` finds: the recorded (judge, model) pairs and the panel rows."""

    pairs: list[dict[str, Any]]
    rows: list[PanelRow]
    rubric_known: bool

    def notes(self) -> list[str]:
        """One plain sentence per self-grading pair (and one when the pass rate without is not computed)."""
        panels = {r.model for r in self.rows}
        out = [f"self-grading: the judge {p['judge']} is also the model under test {p['model']} "
               f"({p['judgments']:,} judgment{'s' if p['judgments'] != 1 else ''})"
               + ("" if p["model"] in panels else "; no other judge to compare with") for p in self.pairs]
        if self.rows and not self.rubric_known:
            out.append("self-grading: the pass rate without the self-grading judge is not computed, the rubric is "
                       "not known (give --rubric)")
        return out

    def to_dict(self) -> dict[str, Any]:
        """The ``"self_grading"`` key of ``judgekit report --json``."""
        return {"pairs": self.pairs, "panel": [r.to_dict() for r in self.rows]}

    def cells(self) -> list[list[str]]:
        """The panel rows as the table's text cells (columns :data:`HEADER`)."""
        from judgekit.reporting.tables import fmt

        def num(x: float | None) -> str:
            return "-" if x is None else fmt(x, 2)

        def pct(x: float | None) -> str:
            return "-" if x is None else f"{100 * x:.1f}%"

        return [[r.model, r.panel, ", ".join(r.left_out), str(r.n), str(r.scored_with), num(r.overall_with),
                 pct(r.pass_rate_with), str(r.scored_without), num(r.overall_without), pct(r.pass_rate_without),
                 "-" if r.delta_overall is None else f"{r.delta_overall:+.2f}",
                 "-" if r.delta_pass_rate is None else f"{100 * r.delta_pass_rate:+.1f} pp"] for r in self.rows]

    def table(self) -> Any:
        """The rich table of the panel rows (None when there are none)."""
        if not self.rows:
            return None
        from rich.table import Table
        from rich.text import Text

        table = Table(title="Self-grading: the model's score with and without its own judge in the panel")
        for name in HEADER:
            table.add_column(name, justify="left" if name in HEADER[:3] else "right")
        for row in self.cells():  # Text: a model name such as "qwen [1-shot]" is not console markup
            table.add_row(*(Text(cell) for cell in row))
        return table

    def renderables(self) -> list[Any]:
        """What ``judgekit report`` prints: the notes, then the table when there are panel rows."""
        table = self.table()
        return [*self.notes(), *([table] if table is not None else [])]

    def markdown(self) -> str:
        """The ``## Self-grading`` section of ``judgekit report --markdown``."""
        from judgekit.reporting.markdown import table_markdown

        text = "\n## Self-grading\n\n" + "".join(f"- {n}\n" for n in self.notes())
        table = self.table()
        return text + ("\n" + table_markdown(table) if table is not None else "")

    def html(self) -> str:
        """The judge card's with/without table (escaped; empty when there are no panel rows; the pairs are the
        card's ``self-grading`` line)."""
        if not self.rows:
            return ""
        from judgekit.reporting.html import _e, _table

        notes = "".join(f'<p class="note">{_e(n)}</p>' for n in self.notes()[len(self.pairs):])
        body = [[_e(cell) for cell in row] for row in self.cells()]
        return ('<p class="note">Self-grading: the model\'s score with the panel as is and recomputed without its own '
                'judge (Δ = without - with).</p>' + _table(HEADER, body, text_columns=3, attrs=' class="self-grading"')
                + notes)


def self_grading_of(judgments: Sequence[Judgment], rubric: Rubric | None) -> SelfGrading | None:
    """The self-grading the judgments record (None when none does): the pairs, and a row per panel and model for
    the panel judgments that have other members than the self-grading one(s); ``rubric`` recomputes the panel
    verdict exactly (without it: the overall only, see :func:`judgekit.judging.selfgrading.panel_without`)."""
    from judgekit.judging.selfgrading import panel_without, recorded_pairs

    pairs = recorded_pairs(judgments)
    if not pairs:
        return None
    groups: dict[tuple[str, str], list[Judgment]] = {}
    for j in judgments:
        if j.panel and j.self_grading and {m.judge for m in j.panel} - set(j.self_grading):
            groups.setdefault((j.judge, j.model), []).append(j)
    rows = []
    for (panel, model), js in groups.items():
        left_out = list(dict.fromkeys(name for j in js for name in j.self_grading or ()))
        with_scored = [j for j in js if j.status == "scored"]
        without = [panel_without(j, left_out, rubric) for j in js]
        without_scored = [(o, p) for o, p in without if o is not None]
        rows.append(PanelRow(model=model, panel=panel, left_out=left_out, n=len(js), scored_with=len(with_scored),
                             overall_with=_mean([j.overall for j in with_scored if j.overall is not None]),
                             pass_rate_with=_rate([j.passed for j in with_scored]),
                             scored_without=len(without_scored),
                             overall_without=_mean([o for o, _ in without_scored]),
                             pass_rate_without=_rate([p for _, p in without_scored]) if rubric is not None else None))
    return SelfGrading(pairs=pairs, rows=rows, rubric_known=rubric is not None)


def card_line(judgments: Sequence[Judgment]) -> tuple[str, str]:
    """The judge card's ``self-grading`` line: the recorded pairs, or that none is recorded."""
    from judgekit.judging.selfgrading import recorded_pairs

    pairs = recorded_pairs(judgments)
    if not pairs:
        return ("self-grading", "none recorded (no judge was a model under test by name or declared alias; results "
                                "written before judgekit recorded it say nothing)")
    return ("self-grading", "; ".join(f"{p['judge']} judged its own model {p['model']} ({p['judgments']:,} "
                                      f"judgment{'s' if p['judgments'] != 1 else ''})" for p in pairs))
