"""The gain of each prompt setting of ``judgekit generate`` (MMAD's 0-shot, 1-shot, 1-shot+, k-shot, with or
without domain knowledge) in judged scores and pass rates, paired by question.

A judgment records the setting of the answer it judged (:attr:`~judgekit.io.records.Judgment.setting`, from
the response's ``meta.generation``) and goes by ``"MODEL [SETTING]"`` in every other table
(:func:`~judgekit.io.records.entry_name`), so settings never pool. :func:`compare_settings` puts the settings
of one model side by side: for each judge, model, condition and category, each setting against the baseline
setting (``0-shot`` when present), paired by item id, with exactly the figures of the clean-vs-degraded
comparison (:func:`judgekit.stats.robustness.compare_conditions`: mean paired difference, percentile-bootstrap
interval, Wilcoxon signed-rank test with Pratt's zeros for scores, exact McNemar for pass).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rich.table import Table

from judgekit.io.records import Judgment
from judgekit.stats.multiple import check_correction, correct_rows, family_text, is_significant
from judgekit.stats.robustness import (
    ALL_CATEGORIES,
    OVERALL,
    PASS,
    POOLED,
    RobustnessRow,
    _delta,
    _md,
    _p,
    _val,
    compare_conditions,
)

__all__ = ["NO_SETTING", "SettingRow", "compare_settings", "family", "setting_rows_to_dicts", "settings_markdown",
           "settings_table"]

#: The setting of answers whose ``meta.generation`` records none (not written by ``judgekit generate --shots``).
NO_SETTING = "no setting"


@dataclass(frozen=True)
class SettingRow:
    """One setting of one model against the baseline setting, in one condition: ``row`` holds the figures of
    :class:`~judgekit.stats.robustness.RobustnessRow` with ``row.condition`` = the setting, ``row.baseline`` =
    the baseline setting, ``row.clean`` / ``row.degraded`` = the baseline's / the setting's mean and
    ``row.diff`` = setting - baseline; ``condition`` is the image condition both answers were given in."""

    condition: str
    row: RobustnessRow

    @property
    def significant(self) -> bool:
        """True when the interval of the gain excludes 0 (not adjusted for multiple comparisons)."""
        return self.row.significant

    @property
    def significant_adjusted(self) -> bool:
        """True when the adjusted p-value (``row.p_adjusted``) is below 0.05: what the tables star."""
        return is_significant(self.row.p_adjusted)


def _setting(j: Judgment) -> str:
    return j.setting or NO_SETTING


def compare_settings(judgments: Iterable[Judgment], criteria: Sequence[str], *, n_boot: int = 2000, seed: int = 0,
                     confidence: float = 0.95, min_pairs: int = 5, correction: str = "holm") -> list[SettingRow]:
    """Paired gain of every prompt setting over the baseline setting, per judge, model, condition and category.

    Parameters
    ----------
    judgments : iterable of Judgment
        Judgments of one or several settings (:attr:`Judgment.setting`); a model is compared only when its
        judgments hold at least two settings in one condition. Answers without a recorded setting count as
        the setting ``"no setting"``.
    criteria : sequence of str
        Rubric criteria; ``"overall"`` and ``"pass"`` are always compared too.
    n_boot, seed, confidence, min_pairs
        As :func:`~judgekit.stats.robustness.compare_conditions` (each group has its own generator seeded with
        ``seed``: a row depends only on its own pairs).
    correction : {"holm", "bh", "none"}, default "holm"
        Multiple-comparison adjustment of the p-values (``row.p_adjusted``, :mod:`judgekit.stats.multiple`):
        the family is every row returned that has a p-value (every judge x model x condition x category x
        setting x criterion), whatever a table shows.

    Returns
    -------
    list of SettingRow
        Sorted by model, judge, condition (clean first), category (``"all"`` first) and setting.

    **Pairs.** An answer of the setting and one of the baseline to the same item (``id``), by the same judge,
    of the same model (:attr:`Judgment.base_model`), in the same condition. The baseline (per judge, model and
    condition) is ``0-shot`` when one of its judgments has it, else ``"no setting"`` when one has that, else
    the first setting by name. Unscored
    judgments drop their pair (never a score); questions answered in one setting only are counted, not used.
    """
    correction = check_correction(correction)
    groups: dict[tuple[str, str, str], list[Judgment]] = {}
    for j in judgments:
        groups.setdefault((j.judge, j.base_model, j.condition or "clean"), []).append(j)
    out: list[SettingRow] = []
    for (_, model, condition), group in groups.items():
        names = {_setting(j) for j in group}
        if len(names) < 2:
            continue
        baseline = "0-shot" if "0-shot" in names else NO_SETTING if NO_SETTING in names else sorted(names)[0]
        # the settings stand in for conditions: compare_conditions pairs each with the baseline by id
        moved = [j.model_copy(update={"model": model, "condition": _setting(j)}) for j in group]
        rows = compare_conditions(moved, criteria, baseline=baseline, n_boot=n_boot, seed=seed,
                                  confidence=confidence, min_pairs=min_pairs, correction="none")
        out += [SettingRow(condition, r) for r in rows if r.condition != POOLED]
    out.sort(key=lambda s: (s.row.model, s.row.judge, s.condition != "clean", s.condition,
                            s.row.category != ALL_CATEGORIES, s.row.category, s.row.condition))
    adjusted = correct_rows([s.row for s in out], correction)  # one family: every gain with a p-value
    return [SettingRow(s.condition, r) for s, r in zip(out, adjusted, strict=True)]


def _select(rows: Sequence[SettingRow], metrics: Sequence[str] | None, categories: bool) -> list[SettingRow]:
    return [s for s in rows if (metrics is None or s.row.criterion in metrics)
            and (categories or s.row.category == ALL_CATEGORIES)]


def family(rows: Sequence[SettingRow], shown: int | None = None) -> str:
    """The sentence stating the correction of the rows and its family, with how many tests a table shows."""
    r0 = next((s.row for s in rows if s.row.correction), None)
    if r0 is None:
        return ""
    members = ("every judge x model x condition x category (and all) x setting x criterion of the comparison"
               + (f"; {shown} shown here" if shown is not None and shown != r0.family_size else ""))
    return family_text(r0.correction, r0.family_size, members)


def _legend(rows: Sequence[SettingRow], every: Sequence[SettingRow]) -> str:
    conf = rows[0].row.confidence if rows else 0.95
    boot = f", {rows[0].row.n_boot} resamples" if rows else ""
    fam = family(every, sum(not math.isnan(s.row.p_value) for s in rows))
    return (f"Gain = setting - baseline setting, mean over pairs (same judge, model, condition, item) "
            f"[{100 * conf:g} % paired percentile bootstrap{boot}, not adjusted]; * = adjusted p < 0.05. p: "
            "Wilcoxon signed-rank (Pratt) for scores, exact McNemar for pass (pp = percentage points). Unscored "
            "pairs excluded (dropped)." + (f" {fam}." if fam else ""))


def settings_table(rows: Sequence[SettingRow], *, metrics: Sequence[str] | None = (OVERALL, PASS),
                   categories: bool = False, title: str | None = "Prompt settings: gain over the baseline setting"
                   ) -> Table:
    """A rich table of the rows: model, [judge], [condition], [category], setting, baseline, criterion, n,
    dropped, the baseline's and the setting's mean, the gain with its interval, p, p adj (starred below 0.05).
    Judge, condition and category columns appear only when they vary; ``categories=False`` shows the rows pooling
    categories only."""
    sel = _select(rows, metrics, categories)
    show_judge = len({s.row.judge for s in sel}) > 1
    show_cond = len({s.condition for s in sel}) > 1
    show_cat = any(s.row.category != ALL_CATEGORIES for s in sel)
    t = Table(title=title, caption=_legend(sel, rows), caption_justify="left")
    t.add_column("Model")
    for name, shown in (("Judge", show_judge), ("Condition", show_cond), ("Category", show_cat)):
        if shown:
            t.add_column(name)
    for name in ("Setting", "Baseline", "Criterion"):
        t.add_column(name)
    for name in ("n", "dropped", "Baseline", "Setting"):
        t.add_column(name, justify="right")
    conf = sel[0].row.confidence if sel else 0.95
    t.add_column(f"Gain [{100 * conf:g} % CI]", justify="right")
    t.add_column("p", justify="right")
    t.add_column("p adj", justify="right")
    for s in sel:
        r = s.row
        delta = _delta(r)
        if s.significant_adjusted:
            delta = f"[bold {'red' if r.diff < 0 else 'green'}]{delta} *[/]"
        t.add_row(r.model, *([r.judge] if show_judge else []), *([s.condition] if show_cond else []),
                  *([r.category] if show_cat else []), r.condition, r.baseline, r.criterion, str(r.n),
                  str(r.n_dropped), _val(r, r.clean), _val(r, r.degraded), delta, _p(r.p_value), _p(r.p_adjusted))
    return t


def settings_markdown(rows: Sequence[SettingRow], *, metrics: Sequence[str] | None = None,
                      categories: bool = True) -> str:
    """A Markdown table of the rows (all metrics by default), followed by a legend line. Columns: model, judge,
    condition, category, setting, baseline, criterion, n, dropped, baseline value, setting value, gain with
    its interval, p, p adj, test; a gain whose adjusted p-value is below 0.05 is in bold and marked ``*``; the
    legend states the correction and its family."""
    sel = _select(rows, metrics, categories)
    conf = sel[0].row.confidence if sel else 0.95
    head = ["model", "judge", "condition", "category", "setting", "baseline", "criterion", "n", "dropped",
            "baseline value", "setting value", f"gain [{100 * conf:g} % CI]", "p", "p adj", "test"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for s in sel:
        r = s.row
        delta = f"**{_delta(r)}** *" if s.significant_adjusted else _delta(r)
        cells = [_md(r.model), _md(r.judge), _md(s.condition), _md(r.category), _md(r.condition), _md(r.baseline),
                 _md(r.criterion), str(r.n), str(r.n_dropped), _val(r, r.clean), _val(r, r.degraded), delta,
                 _p(r.p_value), _p(r.p_adjusted), r.test or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", _legend(sel, rows)]
    return "\n".join(lines)


def setting_rows_to_dicts(rows: Sequence[SettingRow]) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts: ``model, judge, condition, category, setting, baseline, criterion, n,
    n_dropped, n_baseline_only, n_setting_only, baseline_value, value, diff, ci_low, ci_high, p_value, test,
    n_worse, n_better, confidence, n_boot, note, p_adjusted, correction, family_size, significant`` (the interval
    excludes 0), ``significant_adjusted`` (``p_adjusted < 0.05``) and ``family`` (the sentence stating the
    correction and its family); nan becomes None."""
    fam = family(rows)
    out = []
    for s in rows:
        d = asdict(s.row)
        renamed = {"condition": "setting", "clean": "baseline_value", "degraded": "value",
                   "n_degraded_only": "n_setting_only"}
        row: dict[str, Any] = {"model": d["model"], "judge": d["judge"], "condition": s.condition}
        for k, v in d.items():
            if k not in ("model", "judge"):
                row[renamed.get(k, k)] = None if isinstance(v, float) and math.isnan(v) else v
        row["significant"] = s.significant
        row["significant_adjusted"] = s.significant_adjusted
        row["family"] = fam
        out.append(row)
    return out
