"""The bias probes as tables: the rich tables ``judgekit probe`` prints, their Markdown, and the HTML of the judge
card (``judgekit report --probes``). Everything here reads the JSON of a probes file
(:meth:`judgekit.api.probe.ProbeReport.to_dict`), so a file written earlier renders the same way; a file of an
older judgekit without adjusted p-values gets them computed on reading (:func:`adjusted`).

The starred verdicts follow the p-values adjusted for multiple comparisons (``p adj < 0.05``; the family is
every probe's Wilcoxon test of overall and McNemar test of its flips, :func:`judgekit.stats.probes.correct_probes`):
a star on the shift of overall (Wilcoxon) and on McNemar's adjusted p. The 95 % intervals are shown unadjusted;
the per-criterion table shows intervals only (no test, no star)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from judgekit.io.errors import JudgekitError


def _n(x: float | None, digits: int = 2, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _ci(pair: Any, digits: int = 2, pct: bool = False) -> str:
    if not pair or pair[0] is None or pair[1] is None:
        return "-"
    if pct:
        return f"[{100 * pair[0]:.1f}, {100 * pair[1]:.1f}]"
    return f"[{pair[0]:+.{digits}f}, {pair[1]:+.{digits}f}]"


def _p(p: float | None) -> str:
    return "-" if p is None else ("<0.0001" if p < 1e-4 else f"{p:.4f}")


def _sig(p: float | None) -> bool:
    """Whether an adjusted p-value (None: no test) stars its verdict."""
    from judgekit.stats.multiple import is_significant

    return p is not None and is_significant(float(p))


def _star(p: float | None) -> str:
    return " *" if _sig(p) else ""


def shift_cell(s: Mapping[str, Any], *, star: bool = False) -> str:
    """A shift with its interval, ``+0.40 [+0.21, +0.60]``, and with ``star`` a star when its adjusted p-value
    (``p_adjusted``) is below 0.05."""
    mark = _star(s.get("p_adjusted")) if star else ""
    return f"{_n(s.get('shift'), sign=True)} {_ci(s.get('ci'))}{mark}" if s.get("n") else "-"


def adjusted(doc: Mapping[str, Any], correction: str = "holm") -> Mapping[str, Any]:
    """``doc`` as it is when it carries adjusted p-values (``"correction"``), else with them computed by
    ``correction`` (:func:`judgekit.stats.probes.correct_probes`): a probes file of an older judgekit."""
    if "correction" in doc:
        return doc
    from judgekit.stats.probes import correct_probes

    return correct_probes(doc, correction)


def family_caption(doc: Mapping[str, Any]) -> str:
    """The legend of the probes table: the stars, the tests, and the correction with its family."""
    doc = adjusted(doc)
    return ("* = adjusted p < 0.05 (on the shift of overall: Wilcoxon signed-rank, Pratt; on McNemar p adj: exact "
            "test of the flips' two directions); the 95 % intervals and p are not adjusted. "
            f"{doc.get('family')}.")


def rows(doc: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row of display text per probe (the columns of :func:`probe_table`)."""
    out = []
    for p in adjusted(doc).get("probes", []):
        overall = p["shifts"].get("overall", {})
        pa = p["pass"]
        extra = p.get("extra") or {}
        name = p["probe"] + (f" (x{extra['mean_length_ratio']:.2f} length)" if "mean_length_ratio" in extra else "")
        out.append({"probe": name, "pairs": f"{p['pairs']} of {p['answers']}",
                    "overall": shift_cell(overall, star=True), "p": _p(overall.get("p_value")),
                    "p adj": _p(overall.get("p_adjusted")),
                    "pass rate": f"{_pct(pa['baseline'])} -> {_pct(pa['probe'])}",
                    "flips": f"{_pct(pa['flip_share'])} {_ci(pa['flip_ci'], pct=True)}",
                    "fail->pass / pass->fail": f"{pa['fail_to_pass']} / {pa['pass_to_fail']}",
                    "McNemar p": _p(pa.get("mcnemar_p")),
                    "McNemar p adj": _p(pa.get("mcnemar_p_adjusted")) + _star(pa.get("mcnemar_p_adjusted")),
                    "unscored": f"{p['unscored_baseline']} / {p['unscored_probe']}"})
    return out


def probe_table(doc: Mapping[str, Any]) -> Any:
    """The probes of a probes file as a rich table: per probe the pairs, the shift of overall with its 95 %
    interval and Wilcoxon p (raw and adjusted), the pass rates, the share of flipped verdicts with its interval,
    the flips by direction with McNemar's p (raw and adjusted), and the unscored answers (baseline / probe). The
    caption states the correction and its family (:func:`family_caption`)."""
    from rich.table import Table

    t = Table(title=f"Bias probes of {doc.get('judge')} (shift = probe - unchanged; * adjusted p < 0.05)",
              caption=family_caption(doc), caption_justify="left")
    shown = rows(doc)
    for col in ("probe", "pairs", "overall", "p", "p adj", "pass rate", "flips", "fail->pass / pass->fail",
                "McNemar p", "McNemar p adj", "unscored"):
        t.add_column("Δ overall [95 % CI]" if col == "overall" else col, justify="left" if col == "probe" else "right")
    for r in shown:
        t.add_row(*r.values())
    return t


def criteria_table(doc: Mapping[str, Any]) -> Any:
    """The shift of every criterion under every probe (rich table): intervals only, no test (the tests of overall,
    adjusted, are in :func:`probe_table`)."""
    from rich.table import Table

    metrics = [*doc.get("criteria", []), "overall"]
    t = Table(title="Shift per criterion (probe - unchanged, 95 % interval, not a test)")
    t.add_column("probe")
    for m in metrics:
        t.add_column(m, justify="right")
    for p in doc.get("probes", []):
        t.add_row(p["probe"], *(shift_cell(p["shifts"].get(m, {})) for m in metrics))
    return t


def consistency_text(doc: Mapping[str, Any]) -> str:
    """Self-consistency in one sentence (empty when not measured)."""
    c = doc.get("self_consistency")
    if not c:
        return ""
    spread = c["spread"].get("overall", {})
    return (f"Self-consistency: {c['answers']} answers re-sampled {c['samples']} times; {c['measured']} with at "
            f"least two valid samples; mean spread of overall (population SD across samples) "
            f"{_n(spread.get('mean'), 3)} {_ci(spread.get('ci'), 3).replace('+', '')}; pass verdict differs between "
            f"samples for {_pct(c['flip_share'])} {_ci(c['flip_ci'], pct=True)} of answers; all samples identical "
            f"for {_pct(c['identical_share'])}; {c['unscored_samples']} unscored samples.")


def probes_markdown(doc: Mapping[str, Any]) -> str:
    """The probes as Markdown: the summary table, the per-criterion table, self-consistency and notes."""
    from judgekit.reporting.markdown import table_markdown

    parts = [f"# Bias probes: {doc.get('judge')}", "", table_markdown(probe_table(doc)),
             table_markdown(criteria_table(doc))]
    text = consistency_text(doc)
    if text:
        parts += [text, ""]
    parts += [f"- {n}" for n in doc.get("notes", [])]
    return "\n".join(parts).rstrip() + "\n"


def read_probes(path: Any, correction: str = "holm") -> dict[str, Any]:
    """A probes file written by ``judgekit probe --out`` (JSON); a clear error for anything else. A file of an
    older judgekit, without adjusted p-values, gets them computed by ``correction`` (:func:`adjusted`)."""
    import json
    from pathlib import Path

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JudgekitError("no such file", path=p, field="--probes") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JudgekitError(f"cannot read: {exc}", path=p, field="--probes") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JudgekitError(f"not JSON: {exc.msg}", path=p, line=exc.lineno) from None
    if not isinstance(doc, dict) or doc.get("kind") != "judgekit-probes":
        raise JudgekitError("not a probes file of 'judgekit probe --out' (no \"kind\": \"judgekit-probes\")", path=p)
    for i, pr in enumerate(doc.get("probes") or []):
        for key in ("probe", "family", "answers", "pairs", "shifts", "pass", "unscored_baseline", "unscored_probe"):
            if not isinstance(pr, dict) or key not in pr:
                raise JudgekitError(f"probe {i} has no {key!r}", path=p, field=f"probes[{i}]")
    return dict(adjusted(doc, correction))


def probes_html(doc: Mapping[str, Any], *, judges: Sequence[str] = (), rubric: tuple[str, str] | None = None) -> str:
    """The bias probes as the judge card shows them: what was probed and how, a forest plot of the shift of
    overall, the summary table and the per-criterion table (every figure carries ``data-field``, ``data-value``
    and ``data-path``, its place in the probes JSON, as the agreement tables do), self-consistency and notes.
    ``judges`` / ``rubric`` (name, version) of the report: a probes file measured on another judge or rubric
    is flagged."""
    from judgekit.reporting import plots
    from judgekit.reporting.html import _e, _table
    from judgekit.reporting.html_extra import _cell

    doc = adjusted(doc)
    probes = list(doc.get("probes") or [])
    settings = doc.get("settings") or {}
    sample = doc.get("sample") or {}
    per_model = ", ".join(f"{m} {c}" for m, c in (sample.get("per_model") or {}).items())
    out = ['<h3 id="probes">Bias probes</h3>']
    warn = []
    if judges and doc.get("judge") not in judges:
        warn.append(f"measured on the judge {doc.get('judge')}, not on this report's judge(s) {', '.join(judges)}")
    rub = doc.get("rubric") or {}
    if rubric is not None and (rub.get("name"), rub.get("version")) != rubric:
        warn.append(f"measured with the rubric {rub.get('name')} version {rub.get('version')}, not {rubric[0]} "
                    f"version {rubric[1]}")
    if warn:
        out.append(f'<p class="star">Caution: these probes were {_e("; ".join(warn))}.</p>')
    out.append(f'<p class="note">{_e(doc.get("judge"))} on {_e(sample.get("answers"))} answers drawn stratified by '
               f'model ({_e(per_model)}); temperature {_e(settings.get("temperature"))}, '
               f'{_e(settings.get("samples"))} sample(s) per judgment, seed {_e(settings.get("seed"))}; '
               f'images sent: {_e("; ".join(f"{k}: {v}" for k, v in (settings.get("images_sent") or {}).items()))}; '
               f'{_e(settings.get("boot"))} bootstrap resamples; judgekit {_e(settings.get("judgekit"))}.'
               + ("" if doc.get("complete", True) else " <b>Incomplete run</b>: some calls got no reply.") + "</p>")
    if probes:
        overall = [p["shifts"].get("overall", {}) for p in probes]
        labels = [p["probe"] for p in probes]

        def nan(x: Any) -> float:
            return math.nan if x is None else float(x)

        svg = plots.shifts(labels, [nan(o.get("shift")) for o in overall],
                           [nan((o.get("ci") or [None, None])[0]) for o in overall],
                           [nan((o.get("ci") or [None, None])[1]) for o in overall])
        out.append(f"<figure>{svg}<figcaption>Shift of overall under each probe, with its 95 % bootstrap interval; "
                   f"0 is an unbiased judge</figcaption></figure>")
        header = ["probe", "pairs", "Δ overall", "95 % CI", "Wilcoxon p", "Wilcoxon p adj", "pass rate", "flips",
                  "95 % CI", "fail→ pass", "pass→ fail", "McNemar p", "McNemar p adj", "unscored"]
        body = []
        for i, p in enumerate(probes):
            o, pa, at = p["shifts"].get("overall", {}), p["pass"], ["probes", i]
            extra = p.get("extra") or {}
            name = p["probe"] + (f" (x{extra['mean_length_ratio']:.2f} length)" if "mean_length_ratio" in extra
                                 else "")
            body.append([
                _cell("probe", [*at, "probe"], p["probe"], name, text=True),
                _cell("pairs", [*at, "pairs"], p["pairs"], f"{p['pairs']} of {p['answers']}"),
                _cell("shift", [*at, "shifts", "overall", "shift"], o.get("shift"), _n(o.get("shift"), sign=True)),
                _cell("shift_ci", [*at, "shifts", "overall", "ci"], o.get("ci"),
                      _ci(o.get("ci")) + _star(o.get("p_adjusted"))),
                _cell("p_value", [*at, "shifts", "overall", "p_value"], o.get("p_value"), _p(o.get("p_value"))),
                _cell("p_adjusted", [*at, "shifts", "overall", "p_adjusted"], o.get("p_adjusted"),
                      _p(o.get("p_adjusted"))),
                _cell("pass", [[*at, "pass", "baseline"], [*at, "pass", "probe"]], [pa["baseline"], pa["probe"]],
                      f"{_pct(pa['baseline'])} → {_pct(pa['probe'])}"),
                _cell("flip_share", [*at, "pass", "flip_share"], pa["flip_share"], _pct(pa["flip_share"])),
                _cell("flip_ci", [*at, "pass", "flip_ci"], pa["flip_ci"], _ci(pa["flip_ci"], pct=True)),
                _cell("fail_to_pass", [*at, "pass", "fail_to_pass"], pa["fail_to_pass"], str(pa["fail_to_pass"])),
                _cell("pass_to_fail", [*at, "pass", "pass_to_fail"], pa["pass_to_fail"], str(pa["pass_to_fail"])),
                _cell("mcnemar_p", [*at, "pass", "mcnemar_p"], pa.get("mcnemar_p"), _p(pa.get("mcnemar_p"))),
                _cell("mcnemar_p_adjusted", [*at, "pass", "mcnemar_p_adjusted"], pa.get("mcnemar_p_adjusted"),
                      _p(pa.get("mcnemar_p_adjusted")) + _star(pa.get("mcnemar_p_adjusted"))),
                _cell("unscored", [[*at, "unscored_baseline"], [*at, "unscored_probe"]],
                      [p["unscored_baseline"], p["unscored_probe"]],
                      f"{p['unscored_baseline']} / {p['unscored_probe']}")])
        out.append(_table(header, body, attrs=' class="probes"'))
        metrics = [*doc.get("criteria", []), "overall"]
        crit = [[_cell("probe", ["probes", i, "probe"], p["probe"], p["probe"], text=True),
                 *(_cell(f"shift.{m}", ["probes", i, "shifts", m, "shift"], p["shifts"].get(m, {}).get("shift"),
                         shift_cell(p["shifts"].get(m, {}))) for m in metrics)] for i, p in enumerate(probes)]
        out.append("<p><b>Shift of every criterion</b> (probe - unchanged, 95 % interval; intervals only, not tests: "
                   "the tests of overall, adjusted for multiple comparisons, are in the table above)</p>")
        out.append(_table(["probe", *metrics], crit, attrs=' class="probe-criteria"'))
    text = consistency_text(doc)
    if text:
        out.append(f"<p>{_e(text)}</p>")
    notes = list(doc.get("notes") or [])
    out += [f'<p class="note">Note: {_e(n)}</p>' for n in notes]
    out.append('<p class="note">Each probe re-judges the same answers after one change and pairs each with the '
               'unchanged answer\'s verdict; a pair with an unscored side is dropped and counted (unscored: '
               'unchanged / probe). Pass rate: unchanged → probe, over the pairs. verbosity+N%: the '
               'answer followed by content-free sentences until N % longer; injection: an instruction to the judge '
               'appended (injection (any): the mean shift over phrasings, and the share of answers that some '
               'phrasing flips); image: the degraded image instead of the clean one. Shift: mean of probe - '
               'unchanged, 95 % percentile bootstrap over answers, Wilcoxon signed-rank (Pratt); flips: pass verdicts '
               'that differ, McNemar exact test on their two directions. <span class="star">*</span> adjusted p '
               '&lt; 0.05 (on the interval of Δ overall: Wilcoxon p adj; on McNemar p adj); the intervals and p are '
               f'not adjusted. {_e(doc.get("family"))}.</p>')
    return "".join(out)
