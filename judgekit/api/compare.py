"""``judgekit.compare``: two judgings of the same answers (another judge, rubric version or date) compared -
per-model paired differences of pass rate and mean overall, rank changes, agreement of the two runs
(``judgekit compare`` prints what this returns; the figures are :func:`judgekit.stats.compare.compare_runs`).
``judgekit report --compare`` puts the same figures in its JSON, Markdown and HTML page."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgekit.api._util import as_path, check_suffix, check_writable, correction_arg, judgments_of
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Judgment


@dataclass
class Comparison:
    """The figures of :func:`compare`: run A and run B (file or ``"A"``/``"B"``), the judge picked from each,
    and the :class:`~judgekit.stats.compare.RunComparison` (``.result``: per-model rows, agreement, counts)."""

    source_a: str
    source_b: str
    judge_a: str
    judge_b: str
    result: Any  # judgekit.stats.compare.RunComparison

    @property
    def models(self) -> list[Any]:
        """One :class:`~judgekit.stats.compare.ModelComparison` per model, sorted by name."""
        return list(self.result.models)

    @property
    def agreement(self) -> Any:
        """The :class:`~judgekit.stats.compare.RunAgreement` of the two runs (sample level)."""
        return self.result.agreement

    def to_dict(self) -> dict[str, Any]:
        """What ``judgekit compare --json`` writes (JSON-ready: nan is None). Differences are ``B - A``;
        ``rank_change`` is ``rank_a - rank_b`` (positive: better under B). ``mcnemar_p`` / ``wilcoxon_p`` are raw,
        ``mcnemar_p_adj`` / ``wilcoxon_p_adj`` adjusted for multiple comparisons; ``correction``,
        ``family_size`` and ``family`` (a sentence) state how and over which tests."""
        from judgekit.stats.passrate import json_ready

        r = self.result
        models = [{"model": m.model, "matched": m.matched, "unscored": m.unscored, "n": m.n,
                   "pass_rate_a": m.pass_a, "pass_rate_b": m.pass_b, "pass_rate_diff": m.pass_diff,
                   "pass_rate_diff_ci": list(m.pass_ci), "mcnemar_p": m.mcnemar_p,
                   "mcnemar_p_adj": m.mcnemar_p_adj, "a_only_pass": m.a_only_pass,
                   "b_only_pass": m.b_only_pass, "mean_overall_a": m.overall_a, "mean_overall_b": m.overall_b,
                   "mean_overall_diff": m.overall_diff, "mean_overall_diff_ci": list(m.overall_ci),
                   "wilcoxon_p": m.wilcoxon_p, "wilcoxon_p_adj": m.wilcoxon_p_adj, "rank_a": m.rank_a,
                   "rank_b": m.rank_b,
                   "rank_range_a": list(m.rank_range_a), "rank_range_b": list(m.rank_range_b),
                   "rank_change": m.rank_change} for m in r.models]
        a = r.agreement
        return json_ready({
            "run_a": self.source_a, "run_b": self.source_b, "judge_a": self.judge_a, "judge_b": self.judge_b,
            "counts": {"matched": r.matched, "only_a": r.only_a, "only_b": r.only_b, "unscored_a": r.unscored_a,
                       "unscored_b": r.unscored_b, "unscored_either": r.unscored, "compared": r.compared},
            "models": models,
            "agreement": {"level": "sample", "n": a.n, "pass_kappa": a.kappa, "pass_percent_agreement": a.percent,
                          "overall_quadratic_kappa": a.weighted_kappa, "overall_spearman": a.spearman,
                          "note": a.note},
            "boot": r.n_boot, "seed": r.seed, "confidence": r.confidence,
            "correction": r.correction, "family_size": r.family_size, "family": r.family})

    def tables(self) -> list[Any]:
        """The rich tables ``judgekit compare`` prints: per model, then agreement and counts."""
        from rich.table import Table

        r = self.result
        pct = lambda x: "-" if math.isnan(x) else f"{100 * x:.1f} %"  # noqa: E731
        num = lambda x, d=2: "-" if x is None or math.isnan(x) else f"{x:.{d}f}"  # noqa: E731
        ci_pct = lambda c: "-" if math.isnan(c[0]) else f"[{100 * c[0]:+.1f}, {100 * c[1]:+.1f}]"  # noqa: E731
        ci_num = lambda c: "-" if math.isnan(c[0]) else f"[{c[0]:+.2f}, {c[1]:+.2f}]"  # noqa: E731
        diff_pct = lambda x: "-" if math.isnan(x) else f"{100 * x:+.1f}"  # noqa: E731
        diff_num = lambda x: "-" if math.isnan(x) else f"{x:+.2f}"  # noqa: E731
        from judgekit.stats.multiple import is_significant

        adj = lambda x: num(x, 3) + (" *" if is_significant(x) else "")  # noqa: E731
        per = Table(title=f"Run B ({self.judge_b}) vs run A ({self.judge_a}): paired differences B - A, bootstrap "
                          f"95% intervals",
                    caption=f"A = {self.source_a}, B = {self.source_b}; pass-rate difference in points; ranks by pass "
                            f"rate (change > 0: better under B); * = p adj < 0.05; {r.family}")
        for name in ("model", "n", "pass A", "pass B", "pass diff", "pass 95% CI", "McNemar p", "McNemar p adj",
                     "overall A", "overall B", "overall diff", "overall 95% CI", "Wilcoxon p", "Wilcoxon p adj",
                     "rank A", "rank B", "change"):
            per.add_column(name, justify="left" if name == "model" else "right")
        for m in r.models:
            per.add_row(m.model, str(m.n), pct(m.pass_a), pct(m.pass_b), diff_pct(m.pass_diff), ci_pct(m.pass_ci),
                        num(m.mcnemar_p, 3), adj(m.mcnemar_p_adj), num(m.overall_a), num(m.overall_b),
                        diff_num(m.overall_diff), ci_num(m.overall_ci), num(m.wilcoxon_p, 3), adj(m.wilcoxon_p_adj),
                        str(m.rank_a or "-"), str(m.rank_b or "-"),
                        f"{m.rank_change:+d}" if m.rank_a else "-")
        a = r.agreement
        agree = Table(title="Agreement of the two runs (sample level: every compared answer is one pair)",
                      caption=a.note or None)
        agree.add_column("statistic")
        agree.add_column("value", justify="right")
        agree.add_row("compared answers", str(a.n))
        agree.add_row("pass verdicts: Cohen's kappa", num(a.kappa, 3))
        agree.add_row("pass verdicts: agreement", pct(a.percent))
        agree.add_row("overall: quadratic-weighted kappa", num(a.weighted_kappa, 3))
        agree.add_row("overall: Spearman", num(a.spearman, 3))
        counts = Table(title="Answers matched on (id, model, condition)")
        counts.add_column("answers")
        counts.add_column("n", justify="right")
        for label, value in (("matched", r.matched), ("in A only", r.only_a), ("in B only", r.only_b),
                             ("unscored in A", r.unscored_a), ("unscored in B", r.unscored_b),
                             ("unscored in either (excluded)", r.unscored), ("compared", r.compared)):
            counts.add_row(label, str(value))
        return [per, agree, counts]

    def markdown(self) -> str:
        """What ``judgekit compare --markdown`` writes: the tables of :meth:`tables`."""
        from judgekit.reporting.markdown import table_markdown

        return "# Comparison of two runs\n\n" + "\n".join(table_markdown(t) for t in self.tables())


def _one_judge(judgments: list[Judgment], judge: str | None, label: str, flag: str) -> tuple[list[Judgment], str]:
    """The judgments of the one judge of a run: ``judge`` when given, else the only one there is."""
    judges = sorted({j.judge for j in judgments})
    if judge is not None:
        if judge not in judges:
            raise JudgekitError(f"no judgments of judge '{judge}' (judges: {', '.join(judges) or 'none'})",
                                path=label, field=flag)
        return [j for j in judgments if j.judge == judge], judge
    if len(judges) > 1:
        raise JudgekitError(f"holds several judges ({', '.join(judges)}); pick one with {flag}", path=label)
    if not judges:
        raise JudgekitError("holds no judgments", path=label)
    return judgments, judges[0]


def _keyed(judgments: list[Judgment], label: str) -> dict[tuple[str, str, str], Judgment]:
    from judgekit.stats.compare import answer_key

    out: dict[tuple[str, str, str], Judgment] = {}
    for j in judgments:
        key = answer_key(j)
        if key in out:
            raise JudgekitError(f"the answer id={key[0]} model={key[1]} condition={key[2]} is judged twice by "
                                f"'{j.judge}'", path=label)
        out[key] = j
    return out


def compare(run_a: Any, run_b: Any, *, judge_a: str | None = None, judge_b: str | None = None, boot: int = 2000,
            seed: int = 0, json: str | Path | None = None, markdown: str | Path | None = None,
            correction: str = "holm") -> Comparison:
    """Compare two judgings of the same answers: ``run_a`` and ``run_b`` are results files of ``judgekit judge``
    (or :class:`~judgekit.api.Results`, or lists of judgments).

    The judgments are matched on ``(id, model, condition)``. A run holding several judges needs ``judge_a`` /
    ``judge_b`` to pick one. Answers in one run only, and matched answers unscored in either run, are counted
    and left out (an unscored answer is never a fail). Per model: pass rates and mean overall under A and B,
    the paired differences ``B - A`` with percentile-bootstrap 95% intervals (``boot`` resamples of the matched
    answers, ``seed``), McNemar's exact and Wilcoxon-Pratt p-values, ranks by pass rate under A and B and the
    change; then Cohen's kappa and percent agreement of the pass verdicts, the quadratic-weighted kappa (integer
    overall scores) and Spearman's correlation of the overall scores, at the sample level. The p-values are
    adjusted for multiple comparisons by ``correction`` (``"holm"``, the default: Holm-Bonferroni; ``"bh"``:
    Benjamini-Hochberg; ``"none"``), the family being every model's McNemar and Wilcoxon test. ``json`` /
    ``markdown`` also write :meth:`Comparison.to_dict` / :meth:`Comparison.markdown`; both paths are checked
    before anything is read. Bad input (a missing file, no matched answer, several judges and no pick) raises
    :class:`~judgekit.io.errors.JudgekitError` naming the file.
    """
    from judgekit.io.dataio import atomic_write_json, atomic_write_text
    from judgekit.stats.compare import compare_runs

    json_path, md_path = as_path(json), as_path(markdown)
    check_suffix(json_path, "--json", (".json",))
    check_suffix(md_path, "--markdown", (".md",))
    check_writable(json_path, "--json")
    check_writable(md_path, "--markdown")
    correction = correction_arg(correction)
    for value, flag, lo in ((boot, "--boot", 1), (seed, "--seed", 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
            raise JudgekitError(f"expected a whole number of at least {lo}, got {value!r}", field=flag)
    runs = []
    for run, judge, name, flag in ((run_a, judge_a, "A", "--judge-a"), (run_b, judge_b, "B", "--judge-b")):
        judgments, source = judgments_of(run)
        label = source or f"run {name}"
        picked, judge_name = _one_judge(judgments, judge, label, flag)
        runs.append((_keyed(picked, label), label, judge_name))
    (ka, label_a, name_a), (kb, label_b, name_b) = runs
    if not set(ka) & set(kb):
        raise JudgekitError(f"no answer (id, model, condition) in common with {label_a}", path=label_b)
    result = compare_runs(ka, kb, n_boot=int(boot), seed=int(seed), correction=correction)
    comp = Comparison(source_a=label_a, source_b=label_b, judge_a=name_a, judge_b=name_b, result=result)
    if json_path is not None:
        atomic_write_json(json_path, comp.to_dict())
    if md_path is not None:
        atomic_write_text(md_path, comp.markdown())
    return comp
