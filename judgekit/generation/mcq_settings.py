"""The prompt settings of ``judgekit mcq`` (answers of ``judgekit generate --shots/--knowledge``): the pairs of
outcomes each setting is compared on, the gain table and its text. The figures themselves (paired bootstrap,
McNemar) are computed by :func:`judgekit.api.mcq` with :func:`judgekit.stats.paired_tests.paired_difference`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

GAIN_HEAD = ["model", "condition", "baseline", "setting", "pairs", "baseline accuracy", "accuracy", "gain",
             "95 % CI", "McNemar p", "p adj"]
GAIN_NOTE = ("Gain of each setting: micro accuracy (in %) of the setting minus that of the baseline on the questions "
             "answered in both, paired by id, model and condition; 95 % paired percentile bootstrap over the "
             "questions (2,000 resamples, seed 0) and McNemar's exact test; p adj: Holm-Bonferroni adjusted over the "
             "family of every gain in the table (family-wise error rate), * = p adj < 0.05.")
# The corrections in words (as judgekit.stats.multiple.correction_label: judgekit.generation does not import stats).
_CORRECTIONS = {"holm": "Holm-Bonferroni adjusted (family-wise error rate)",
                "bh": "Benjamini-Hochberg adjusted (false discovery rate)"}


def gain_note(gains: Sequence[SettingGain]) -> str:
    """The note under the gain table: how the gains were measured, and the correction of ``gains`` (``"holm"``,
    ``"bh"`` or ``"none"``, set by :func:`judgekit.api.pipeline.correct_gains`) with its family and size."""
    method = next((g.correction for g in gains if g.correction), "holm")
    size = next((g.family_size for g in gains if g.correction), 0)
    head = GAIN_NOTE.split("; p adj:")[0]
    if method == "none":
        return f"{head}; p adj: no correction for multiple comparisons (p adj = p; {size} tests), * = p adj < 0.05."
    return (f"{head}; p adj: {_CORRECTIONS[method]} over the family of every gain in the table ({size} "
            f"test{'s' * (size != 1)}), * = p adj < 0.05.")


class SettingGain(BaseModel):
    """Accuracy of ``setting`` minus that of ``baseline`` on the questions answered in both (paired by id, model
    and condition), with the 95 % paired percentile-bootstrap interval and McNemar's exact p-value (``p_value``,
    raw; ``p_adjusted``: adjusted by ``correction`` over the ``family_size`` gains of the table, see
    :func:`judgekit.api.pipeline.correct_gains`)."""

    model: str
    condition: str | None
    baseline: str
    setting: str
    n: int
    baseline_accuracy: float
    accuracy: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    note: str = ""
    p_adjusted: float = float("nan")
    correction: str = ""
    family_size: int = 0



def show_settings(settings: Iterable[str | None]) -> bool:
    """Whether the setting is worth a column: several settings, or one that is not the plain 0-shot."""
    found = set(settings)
    return len(found) > 1 or not found <= {None, "0-shot"}


def setting_suffix(setting: str | None) -> str:
    """``", setting NAME"`` for a table title; empty for no setting and the plain 0-shot."""
    return "" if setting in (None, "0-shot") else f", setting {setting}"


def setting_pairs(outcomes: Iterable[Any]) -> list[tuple[str, str | None, str, str, list[float], list[float]]]:
    """Per model and condition, each setting against the baseline (``0-shot`` when present, else the first
    setting seen): (model, condition, baseline, setting, baseline outcomes, setting outcomes), the outcomes
    (1 correct, 0 wrong; of :class:`~judgekit.generation.mcq.MCQOutcome`) of the questions answered in both,
    paired by id, in order."""
    by: dict[tuple[str, str | None], dict[str | None, dict[str, float]]] = {}
    for o in outcomes:
        by.setdefault((o.model, o.condition), {}).setdefault(o.setting, {})[o.id] = float(o.correct)
    out = []
    for (model, condition), per in by.items():
        names = [s for s in per if s is not None]
        if len(names) < 2:
            continue
        base = "0-shot" if "0-shot" in names else names[0]
        for other in (s for s in names if s != base):
            ids = [i for i in per[base] if i in per[other]]
            out.append((model, condition, base, other, [per[base][i] for i in ids], [per[other][i] for i in ids]))
    return out


def gain_rows(gains: Sequence[SettingGain]) -> list[list[str]]:
    """The gain table's rows (percentage points, ``-`` where there is no figure)."""
    def pct(x: float) -> str:
        return "-" if x != x else f"{100 * x:.1f}"

    def signed(x: float) -> str:
        return "-" if x != x else f"{100 * x:+.1f}"

    return [[g.model, g.condition or "-", g.baseline, g.setting, str(g.n), pct(g.baseline_accuracy), pct(g.accuracy),
             signed(g.diff), "-" if g.ci_low != g.ci_low else f"[{signed(g.ci_low)}, {signed(g.ci_high)}]",
             "-" if g.p_value != g.p_value else f"{g.p_value:.3g}",
             "-" if g.p_adjusted != g.p_adjusted else f"{g.p_adjusted:.3g}" + (" *" if g.p_adjusted < 0.05 else "")]
            for g in gains]


def print_gains(gains: Sequence[SettingGain], console: Console) -> None:
    """Print the gain table and its note (nothing when there are no gains)."""
    if not gains:
        return
    table = Table(title="Gain of each setting (percentage points)", title_justify="left")
    for i, col in enumerate(GAIN_HEAD):
        table.add_column(col, justify="left" if i < 4 else "right")
    for row in gain_rows(gains):
        table.add_row(*row)
    console.print(table)
    console.print(gain_note(gains), style="dim")


def gain_markdown(gains: Sequence[SettingGain], table: Callable[[Sequence[str], Iterable[Sequence[str]]], list[str]]
                  ) -> list[str]:
    """The gain section of the Markdown report as lines (none when there are no gains)."""
    if not gains:
        return []
    return ["", "### Gain of each setting", "", gain_note(gains), "", *table(GAIN_HEAD, gain_rows(gains))]
