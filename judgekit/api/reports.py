"""``judgekit.report`` and ``judgekit.agree``: the figures of a results file, and how far a judge agrees with
human ratings (``judgekit report`` and ``judgekit agree`` print what these return)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgekit.api._util import as_path, check_suffix, check_writable, correction_arg, judgments_of, names
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Judgment


def no_robustness_note(judgments: Sequence[Judgment], baseline: str) -> str:
    """Why a results file has no robustness comparison."""
    conditions = sorted({j.condition or "clean" for j in judgments})
    return (f"no robustness comparison: the results hold no '{baseline}' baseline and other condition(s) "
            f"(conditions: {', '.join(conditions)})")


@dataclass
class Report:
    """The figures of :func:`report`: summary groups, pass rates, the robustness comparison."""

    judgments: list[Judgment]
    criteria: list[str]
    source: str | None  # the results file, when one was read
    baseline: str
    all_criteria: bool
    pass_rate_by: list[str]
    pass_rates: list[Any]  # judgekit.stats.passrate.PassRate, one per group of pass_rate_by
    robustness: list[Any] | None  # judgekit.stats.robustness.RobustnessRow; None: no baseline + other condition
    boot: int = 2000  # bootstrap resamples of the leaderboard's intervals and rank ranges
    seed: int = 0
    label: str | None = None  # what the HTML page calls the judgments: the results file, or the Results' own file
    agreement: Any = None  # Agreement with human ratings (report(human=...)), else None
    comparison: Any = None  # judgekit.api.compare.Comparison with another run (report(compare=...)), else None
    probes: dict[str, Any] | None = None  # the probes file of judgekit probe (report(probes=...)), else None
    # judgekit.reporting.selfgrading.SelfGrading: judges that graded their own model (with/without rows), else None
    self_grading: Any = None
    settings: list[Any] = field(default_factory=list)  # judgekit.stats.settings.SettingRow: prompt-setting gains
    _leaderboard: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def leaderboard(self) -> list[dict[str, Any]]:
        """The leaderboard rows (:func:`judgekit.reporting.leaderboard.leaderboard`): per judge, models ranked by
        pass rate with Wilson and bootstrap intervals, the bootstrap range of each rank, means and counts."""
        if self._leaderboard is None:
            from judgekit.reporting.leaderboard import leaderboard

            self._leaderboard = leaderboard(self.judgments, self.criteria, n_resamples=self.boot, seed=self.seed)
        return self._leaderboard

    @property
    def checks(self) -> list[dict[str, Any]]:
        """The rubric's fact checks per model (:func:`judgekit.reporting.tables.check_rates`); [] without checks."""
        from judgekit.reporting.tables import check_rates

        return check_rates(self.judgments)

    @property
    def robustness_note(self) -> str:
        """Empty when there are robustness rows, else why there are none."""
        return "" if self.robustness else no_robustness_note(self.judgments, self.baseline)

    def summary(self) -> dict[str, list[dict[str, Any]]]:
        """Per grouping (``model``, ``model x category``, ``model x condition`` as present), one entry per group:
        key, n, scored, unscored, means, mean_overall, passed, pass_rate, wilson_ci (JSON-ready: NaN is None)."""
        from judgekit.reporting.tables import summary_groupings
        from judgekit.stats.aggregate import summarize
        from judgekit.stats.passrate import json_ready

        return {" x ".join(g): [json_ready({"key": dict(zip(g, s.key, strict=True)), "n": s.n, "scored": s.scored,
                                            "unscored": s.unscored, "means": s.means, "mean_overall": s.mean_overall,
                                            "passed": s.passed, "pass_rate": s.pass_rate,
                                            "wilson_ci": list(s.pass_ci)})
                                for s in summarize(self.judgments, g, self.criteria)]
                for g in summary_groupings(self.judgments)}

    def to_dict(self) -> dict[str, Any]:
        """What ``judgekit report --json`` writes."""
        from judgekit.stats.robustness import rows_to_dicts

        return {"results_file": self.source, "judgments": len(self.judgments), "criteria": self.criteria,
                "summary": self.summary(), "pass_rates": [r.to_dict() for r in self.pass_rates],
                "robustness": rows_to_dicts(self.robustness) if self.robustness else [],
                "robustness_note": self.robustness_note, "leaderboard": self.leaderboard,
                **({"agreement": self.agreement.to_dict()} if self.agreement is not None else {}),
                **({"comparison": self.comparison.to_dict()} if self.comparison is not None else {}),
                **({"probes": self.probes} if self.probes is not None else {}),
                **({"self_grading": self.self_grading.to_dict()} if self.self_grading is not None else {}),
                **({"settings": _setting_dicts(self.settings)} if self.settings else {}),
                **({"checks": checks} if (checks := self.checks) else {})}

    def pass_rate_table(self) -> Any:
        """The pass rates as the rich table ``judgekit report`` prints (Wilson and bootstrap 95% intervals)."""
        from judgekit.stats.passrate import pass_rate_table

        return pass_rate_table(self.pass_rates, title="Pass rates: Wilson and bootstrap 95% intervals (by "
                                                      + " x ".join(self.pass_rate_by) + ")")

    def tables(self) -> list[Any]:
        """The rich tables ``judgekit report`` prints, in order: the summary tables, the pass rates and, when
        there is a comparison, the robustness table (overall and pass rows, or every criterion)."""
        from judgekit.reporting.tables import summary_tables

        shown = [*summary_tables(self.judgments, self.criteria), self.pass_rate_table()]
        if self.robustness is not None:
            from judgekit.stats.robustness import robustness_table

            shown.append(robustness_table(self.robustness, metrics=None if self.all_criteria else ("overall", "pass")))
        if self.settings:
            from judgekit.stats.settings import settings_table

            shown.append(settings_table(self.settings, metrics=None if self.all_criteria else ("overall", "pass")))
        if checks := self.checks:
            from judgekit.reporting.tables import checks_table

            shown.append(checks_table(checks))
        return shown

    def markdown(self) -> str:
        """What ``judgekit report --markdown`` writes: the summary, pass-rate and robustness tables, then the
        agreement with human ratings and the comparison with another run when the report has them."""
        from judgekit.reporting.markdown import markup_plain, summary_markdown, table_markdown

        text = summary_markdown(self.judgments, self.criteria)
        text += "\n## Pass rates\n\n" + table_markdown(self.pass_rate_table())
        if self.robustness:
            from judgekit.stats.robustness import robustness_markdown

            text += "\n## Robustness: degraded vs clean\n\n" + robustness_markdown(self.robustness)
        if self.settings:
            from judgekit.stats.settings import settings_markdown

            text += "\n## Prompt settings: gain over the baseline setting\n\n" + settings_markdown(self.settings)
        if checks := self.checks:
            from judgekit.reporting.tables import checks_table

            text += "\n## Fact checks (no judge call)\n\n" + table_markdown(checks_table(checks))
        if self.self_grading is not None:
            text += self.self_grading.markdown()
        if self.agreement is not None:
            text += f"\n## Agreement with human ratings ({self.agreement.human_file})\n\n" + "\n".join(
                table_markdown(t) if not isinstance(t, str) else markup_plain(t) + "\n"
                for t in self.agreement.renderables())
        if self.probes is not None:
            from judgekit.reporting.probes import probes_markdown

            text += "\n#" + probes_markdown(self.probes)
        if self.comparison is not None:
            c = self.comparison
            text += (f"\n## Comparison with another run (A = {c.source_a}, B = {c.source_b})\n\n"
                     + "\n".join(table_markdown(t) for t in c.tables()))
        return text

    def html(self, responses: Any = None, rubric: Any = None) -> str:
        """What ``judgekit report --html`` writes: one self-contained page (leaderboard, plots, breakdowns, judge
        card, examples; see :mod:`judgekit.reporting.html`). ``responses`` (a responses file or a list of
        :class:`~judgekit.io.records.Response`) adds the question, reference, answer and images to the examples;
        ``rubric`` (a file, a shipped name or a :class:`~judgekit.judging.rubric.Rubric`; default the run's, or
        the shipped rubric of the recorded name and version) gives the samples' pass verdicts."""
        from judgekit.reporting.html import render

        return render(self, self.leaderboard, responses=_responses_arg(responses),
                      rubric=_rubric_arg(rubric, self.judgments), seed=self.seed)


def _setting_dicts(rows: Sequence[Any]) -> list[dict[str, Any]]:
    from judgekit.stats.settings import setting_rows_to_dicts

    return setting_rows_to_dicts(rows)


def _responses_arg(responses: Any) -> Any:
    """Responses from a file (images not required to exist: missing ones are left out of the page) or a list."""
    if responses is None or isinstance(responses, list | tuple):
        return responses
    from judgekit.io.dataio import read_responses

    return read_responses(responses, check_images=False)


def _rubric_arg(rubric: Any, judgments: Sequence[Judgment]) -> Any:
    """The rubric given, else the shipped rubric whose name and version every judgment records, else None."""
    from judgekit.judging.rubric import Rubric, load_rubric

    if rubric is not None:
        return rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
    recorded = {(j.rubric, j.rubric_version) for j in judgments}
    if len(recorded) != 1:
        return None
    name, version = recorded.pop()
    from judgekit.sample_data import rubric_path, shipped_rubrics

    if name not in shipped_rubrics():
        return None
    shipped = load_rubric(rubric_path(name))
    return shipped if shipped.version == version else None


def _settings_of(judgments: Sequence[Judgment], criteria: Sequence[str], boot: int, seed: int,
                 correction: str) -> list[Any]:
    """The prompt-setting gains (:func:`judgekit.stats.settings.compare_settings`) when some model was judged in
    several settings, else []."""
    if len({j.setting for j in judgments}) < 2:
        return []
    from judgekit.stats.settings import compare_settings

    return compare_settings(judgments, criteria, n_boot=boot, seed=seed, correction=correction)


def report(results: Any, *, baseline: str = "clean", all_criteria: bool = False, boot: int = 2000, seed: int = 0,
           json: str | Path | None = None, markdown: str | Path | None = None, html: str | Path | None = None,
           responses: Any = None, rubric: Any = None, human: str | Path | None = None,
           criterion: str | Sequence[str] | None = None, raters: str | Sequence[str] | None = None,
           group_by: str | None = None, compare: Any = None, probes: str | Path | None = None,
           csv: str | Path | None = None, correction: str = "holm") -> Report:
    """The figures ``judgekit report`` prints for ``results`` (a results file, a :class:`~judgekit.api.Results`
    or a list of judgments).

    Means and pass rates are over scored judgments; a pass is the rubric's rule as the judge applied it
    (``passed``); pass rates come with 95% Wilson and percentile-bootstrap intervals (``boot`` resamples,
    ``seed``), by model, and by judge and condition when they vary. When the judgments hold the ``baseline``
    condition (empty counts as clean) and another, the robustness comparison gives paired differences per
    model, criterion and category with bootstrap CIs and Wilcoxon/McNemar tests. When a model was judged in
    several prompt settings of ``judgekit generate`` (each its own entry ``"MODEL [SETTING]"`` everywhere),
    :attr:`Report.settings` gives each setting's paired gain over the baseline setting
    (:func:`judgekit.stats.settings.compare_settings`; the JSON's ``"settings"`` key). ``json`` / ``markdown`` also
    write :meth:`Report.to_dict` / :meth:`Report.markdown`, ``csv`` the leaderboard rows as CSV
    (:func:`judgekit.reporting.leaderboard.leaderboard_csv`), ``html`` the page of :meth:`Report.html` (with the
    ``responses`` and ``rubric`` given); every output path is checked before anything is read. ``correction``
    (``"holm"``, the default, ``"bh"`` or ``"none"``; :mod:`judgekit.stats.multiple`) adjusts for multiple
    comparisons the p-values of the robustness comparison (one family: all its rows) and of ``compare`` (one
    family: every model's two tests); the tables show both p-values and star by the adjusted one.

    ``human`` (a ratings file) adds the agreement of the judge with human ratings: :func:`agree` on these
    judgments with ``criterion``, ``raters`` and ``group_by`` as there (and ``boot``, ``seed``; the rubric's
    scale), in :attr:`Report.agreement`, the JSON's ``"agreement"`` key (= ``judgekit agree --json``), the
    Markdown and the page's judge card. ``compare`` (another results file, :class:`~judgekit.api.Results` or
    list of judgments of the same answers) adds :func:`judgekit.api.compare.compare` with these judgments as run
    A and ``compare`` as run B (differences B - A) in :attr:`Report.comparison`, the JSON's ``"comparison"``
    key (= ``judgekit compare --json``), the Markdown and the page. ``probes`` (a probes file of ``judgekit
    probe --out``) adds the judge's bias probes to :attr:`Report.probes`, the JSON's ``"probes"`` key (the file
    as read; a file of an older judgekit without adjusted p-values gets them computed by ``correction``), the
    Markdown and the judge card (flagged when measured on another judge or rubric). All are read
    before anything is written: a bad ratings, results or probes file raises and writes nothing.

    When the judgments record self-grading (a judge that is also the model under test, ``Judgment.self_grading``,
    see :mod:`judgekit.judging.selfgrading`), :attr:`Report.self_grading` names the pairs and, for panel
    judgments with other judges, gives that model's mean overall and pass rate with the panel as is and
    recomputed without that judge (:mod:`judgekit.reporting.selfgrading`; the ``rubric``, or the run's, or the
    shipped one of the recorded name, makes the pass verdict exact); in the JSON's ``"self_grading"`` key, the
    Markdown, the terminal and the judge card.
    """
    from judgekit.api.judging import Results
    from judgekit.io.dataio import atomic_write_json, atomic_write_text
    from judgekit.stats.passrate import pass_rates

    json_path, md_path = as_path(json), as_path(markdown)
    check_suffix(json_path, "--json", (".json",))
    check_suffix(md_path, "--markdown", (".md",))
    check_writable(json_path, "--json")
    check_writable(md_path, "--markdown")
    csv_path = as_path(csv)
    check_suffix(csv_path, "--csv", (".csv",))
    check_writable(csv_path, "--csv")
    html_path = as_path(html)
    check_suffix(html_path, "--html", (".html", ".htm"))
    check_writable(html_path, "--html")
    correction = correction_arg(correction)
    judgments, source = judgments_of(results)
    criteria = (list(results.criteria) if isinstance(results, Results)
                else list(dict.fromkeys(c for j in judgments for c in j.scores)))
    by: list[str] = ["model"]
    if len({j.judge for j in judgments}) > 1:
        by.append("judge")
    if len({j.condition or "" for j in judgments}) > 1:
        by.append("condition")
    rates = pass_rates(judgments, by=by, n_resamples=boot, seed=seed)
    holder = results if isinstance(results, Results) else Results(judgments=judgments, criteria=criteria)
    rep = Report(judgments=judgments, criteria=criteria, source=source, baseline=baseline, all_criteria=all_criteria,
                 pass_rate_by=by, pass_rates=rates, robustness=holder.robustness(baseline, n_boot=boot, seed=seed,
                                                                                 correction=correction),
                 boot=boot, seed=seed, settings=_settings_of(judgments, criteria, boot, seed, correction),
                 label=source or (str(results.out) if isinstance(results, Results) and results.out else None))
    if rubric is None and isinstance(results, Results) and results.rubric is not None:
        rubric = results.rubric
    if human is not None:
        rep.agreement = agree(judgments, human, criterion=criterion, raters=raters, group_by=group_by,
                              rubric=_rubric_arg(rubric, judgments), boot=boot, seed=seed)
        rep.agreement.judge_file = rep.label
    if probes is not None:
        from judgekit.reporting.probes import read_probes

        rep.probes = read_probes(probes, correction)  # an older file: its p adj computed by correction
    if compare is not None:
        from judgekit.api.compare import compare as compare_runs

        rep.comparison = compare_runs(results, compare, boot=boot, seed=seed, correction=correction)
    if any(j.self_grading for j in judgments):  # judgekit.reporting.selfgrading: the panel recomputed without
        from judgekit.reporting.selfgrading import self_grading_of

        rep.self_grading = self_grading_of(judgments, _rubric_arg(rubric, judgments))
    page = None
    if html_path is not None:  # built before anything is written: a bad responses file writes nothing
        page = rep.html(responses, rubric)
    if json_path is not None:
        atomic_write_json(json_path, rep.to_dict())
    if md_path is not None:
        atomic_write_text(md_path, rep.markdown())
    if csv_path is not None:
        from judgekit.reporting.leaderboard import leaderboard_csv

        atomic_write_text(csv_path, leaderboard_csv(rep.leaderboard))
    if html_path is not None and page is not None:
        atomic_write_text(html_path, page)
    return rep


# ---- agreement ---------------------------------------------------------------------------------------------

@dataclass
class CriterionAgreement:
    """The agreement of the judge with the humans on one criterion (see :func:`agree`)."""

    criterion: str
    kind: str  # binary, ordinal or continuous
    raters: list[str]
    notes: list[str]
    dropped_unscored: int
    levels: list[str]  # the correlation levels reported: sample, summary (group_by given), system (several models)
    group_by: str | None
    grouped: bool
    report: Any  # judgekit.stats.agreement.AgreementReport
    ppi: list[Any] = field(default_factory=list)  # judgekit.stats.passrate.PPIEstimate per model
    joined: Any = field(default=None, repr=False)  # judgekit.io.ratings.Joined: the aligned judge and human values

    def to_dict(self) -> dict[str, Any]:
        """This criterion's section of ``judgekit agree --json``."""
        section = {"kind": self.kind, "raters": self.raters, "notes": self.notes,
                   "dropped_unscored": self.dropped_unscored, "levels": self.levels, "group_by": self.group_by,
                   "report": self.report.to_dict()}
        if self.ppi:
            section["ppi"] = [p.to_dict() for p in self.ppi]
        return section


@dataclass
class Agreement:
    """What :func:`agree` returns: one :class:`CriterionAgreement` per compared criterion, in order."""

    sections: list[CriterionAgreement]
    judge_file: str | None
    human_file: str

    @property
    def criteria(self) -> dict[str, CriterionAgreement]:
        """The sections by criterion name."""
        return {s.criterion: s for s in self.sections}

    def __getitem__(self, criterion: str) -> CriterionAgreement:
        return self.criteria[criterion]

    def to_dict(self) -> dict[str, Any]:
        """What ``judgekit agree --json`` writes."""
        return {"judge_file": self.judge_file, "human_file": self.human_file,
                "criteria": {s.criterion: s.to_dict() for s in self.sections}}

    def renderables(self) -> list[Any]:
        """What ``judgekit agree`` prints, in order: per criterion a header line (console markup) and tables."""
        from judgekit.reporting.tables import agreement_renderables

        return [thing for s in self.sections for thing in agreement_renderables(s)]

    def markdown(self) -> str:
        """What ``judgekit agree --markdown`` writes: every table shown, as Markdown."""
        from judgekit.reporting.markdown import markup_plain, table_markdown

        parts = [f"# Agreement: {self.judge_file or 'judgments'} vs {self.human_file}", ""]
        parts += [table_markdown(t) if not isinstance(t, str) else markup_plain(t) + "\n" for t in self.renderables()]
        return "\n".join(parts)


def parse_scale(scale: str | Sequence[float]) -> tuple[float, float]:
    """A rating scale as ``(lo, hi)`` from ``"1-5"`` or a pair."""
    if isinstance(scale, str):
        try:
            lo, hi = (float(x) for x in scale.split("-", 1))
        except ValueError:
            raise JudgekitError(f"expected LO-HI such as 1-5, got {scale!r}", field="--scale") from None
    else:
        lo, hi = (float(x) for x in scale)
    if not lo < hi:
        raise JudgekitError(f"expected LO < HI, got {scale!r}", field="--scale")
    return lo, hi


def _group_values(jn: Any, ratings: Any, field_name: str) -> list[str]:
    """The ``group_by`` value of each joined response: a results field or a column of the ratings."""
    builtin = {"id": jn.ids, "model": jn.models, "condition": jn.conditions, "category": jn.categories}
    if field_name in builtin:
        return list(builtin[field_name])
    values = []
    for key in jn.keys:
        extra = ratings.extras.get(key, {})
        if field_name not in extra:
            raise JudgekitError(f"no column {field_name!r} for response "
                                f"{dict(zip(ratings.key_fields, key, strict=True))} "
                                f"(use id, model, condition, category or a column of the ratings)",
                                path=ratings.path, field="--group-by")
        values.append(extra[field_name])
    return values


def _ppi_rows(jn: Any, judged: Sequence[Judgment], threshold: float) -> list[Any]:
    """Prediction-powered pass rates per model (criterion overall/pass, or binary labels): the judge's pass/fail
    on every scored response of the model in the results, corrected by the human pass/fail (majority label, or
    mean rating >= threshold) on the rated ones. Computed when some model has both rated and unrated
    responses."""
    import numpy as np

    from judgekit.stats.passrate import ppi_pass_rates

    if jn.kind != "binary" and jn.criterion not in ("overall", "pass"):
        return []
    judge_pass = {(j.id, j.model, j.condition or ""): bool(j.passed) for j in judged
                  if j.status == "scored" and j.passed is not None}
    human_pass: dict[tuple[str, str, str], bool] = {}
    for i, key in enumerate(zip(jn.ids, jn.models, jn.conditions, strict=True)):
        row = jn.humans[i][~np.isnan(jn.humans[i])]
        if row.size == 0 or key not in judge_pass:
            continue
        human_pass[key] = bool(row.mean() > 0.5) if jn.kind == "binary" else bool(row.mean() >= threshold)
    groups = {k: k[1] for k in judge_pass}
    per_model = {m: (sum(1 for k in human_pass if k[1] == m), sum(1 for k in judge_pass if k[1] == m))
                 for m in set(groups.values())}
    if not any(0 < n_h < n_j for n_h, n_j in per_model.values()):
        return []
    return ppi_pass_rates(judge_pass, human_pass, groups)


def agree(judgments: Any, ratings: str | Path, *, criterion: str | Sequence[str] | None = None,
          raters: str | Sequence[str] | None = None, group_by: str | None = None,
          scale: str | Sequence[float] | None = None, rubric: Any = None, level: str = "auto",
          threshold: float | None = None, judge_label: str | None = None, boot: int = 1000,
          ci: str = "percentile", seed: int = 0, json: str | Path | None = None,
          markdown: str | Path | None = None) -> Agreement:
    """How far the judge agrees with human ratings: what ``judgekit agree`` prints, per criterion.

    ``judgments``: a results file, a :class:`~judgekit.api.Results` or a list of judgments; ``ratings``: a
    ratings file, long (id, rater, score[, criterion]) or wide (id and one column per rater, ``raters`` names
    them); responses are joined on id (and model, condition when the ratings have them). ``criterion``:
    default every criterion of a long table, ``overall`` for a wide one; binary labels are compared with the
    judge's pass/fail (the rubric's pass rule, e.g. ``overall >= 3``) or its flag of that name.

    Conventions: ``level`` picks the statistics for non-binary ratings (``auto``: ordinal when every value is
    an integer, continuous as soon as one is fractional; ``ordinal`` rounds half up). Correlations are
    reported at the sample level, at the summary level (within each group of ``group_by``, averaged; also the
    bootstrap's cluster) when ``group_by`` is given, and at the system level when there are several models;
    each entry says its level. Intervals are bootstrap 95% (``boot`` resamples, ``ci`` percentile or bca,
    ``seed``). The inter-human ceiling compares each human with the others and the judge with the same
    references; per model, the prediction-powered pass rate (human pass = mean rating >= ``threshold``,
    default 3, or the majority label) is given when some model has rated and unrated responses. ``scale``:
    ``"LO-HI"`` or a pair (default the ``rubric``'s, else 1-5). ``json`` / ``markdown`` also write
    :meth:`Agreement.to_dict` / :meth:`Agreement.markdown`.
    """
    from judgekit.io.dataio import atomic_write_json, atomic_write_text
    from judgekit.io.ratings import join, read_ratings
    from judgekit.stats.agreement import agreement_report

    json_path, md_path = as_path(json), as_path(markdown)
    check_suffix(json_path, "--json", (".json",))
    check_suffix(md_path, "--markdown", (".md",))
    check_writable(json_path, "--json")
    check_writable(md_path, "--markdown")
    lo_hi = (1.0, 5.0)
    if rubric is not None:
        from judgekit.api.judging import load_rubric_arg

        rub = load_rubric_arg(rubric)
        lo_hi = (float(rub.scale.min), float(rub.scale.max))
    if scale is not None:
        lo_hi = parse_scale(scale)
    if threshold is None:
        threshold = 3.0
    judged_all, judge_file = judgments_of(judgments)
    rater_names = (([r.strip() for r in raters.split(",") if r.strip()] if isinstance(raters, str) else list(raters))
                   if raters else None)
    wanted = names(criterion)
    default_criterion = (wanted or ["overall"])[0]
    human = read_ratings(ratings, criterion=default_criterion, raters=rater_names, scale=lo_hi,
                         exclude=[group_by] if group_by else [])
    criteria = wanted or (sorted(human.values) if human.layout == "long" else [default_criterion])
    joined = [join(judged_all, human, c, threshold=threshold, scale=lo_hi, judge_label=judge_label,
                   level=level) for c in criteria]  # type: ignore[arg-type]
    judged = [j for j in judged_all if judge_label is None or j.judge == judge_label]
    sections = []
    for jn in joined:
        groups = _group_values(jn, human, group_by) if group_by else None
        systems = jn.models if len(set(jn.models)) > 1 else None
        rep = agreement_report(jn.judge, jn.humans, scale=lo_hi if jn.kind != "binary" else None, kind=jn.kind,
                               threshold=threshold if jn.kind != "binary" else None, groups=groups, systems=systems,
                               n_resamples=boot, method=ci, seed=seed)  # type: ignore[arg-type]
        levels = ["sample"] + (["summary"] if groups is not None else []) + (["system"] if systems else [])
        c = rep.ceiling
        if c is not None and len(c.raters) == len(jn.raters):  # default names rater0, rater1, ...: the columns'
            for r, name in zip(c.raters, jn.raters, strict=True):
                r.rater = name
        sections.append(CriterionAgreement(criterion=jn.criterion, kind=jn.kind, raters=jn.raters, notes=jn.notes,
                                           dropped_unscored=jn.dropped_unscored, levels=levels, group_by=group_by,
                                           grouped=groups is not None, report=rep,
                                           ppi=_ppi_rows(jn, judged, threshold), joined=jn))
    result = Agreement(sections=sections, judge_file=judge_file, human_file=str(ratings))
    if json_path is not None:
        atomic_write_json(json_path, result.to_dict())
    if md_path is not None:
        atomic_write_text(md_path, result.markdown())
    return result
