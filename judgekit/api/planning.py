"""Planning (``judgekit plan``): how many items or human labels an evaluation needs, from a pilot results file
or from stated rates. The formulas are :mod:`judgekit.stats.planning`; here the pilot's estimates are taken
from the files and every bad input is a :class:`~judgekit.io.errors.JudgekitError` naming the flag."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from judgekit.api._util import as_path, check_suffix, check_writable, judgments_of
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Judgment

__all__ = ["MIN_PILOT", "Plan", "plan", "plan_items", "plan_labels", "plan_width"]

#: The fewest pilot items (pairs, labelled answers, verdicts) a plan is estimated from.
MIN_PILOT = 10


class Plan(BaseModel):
    """A plan: ``rows`` hold the figures (one row, or one per model for labels), ``inputs`` what it used (stated
    values or pilot estimates), ``notes`` its conventions and caveats."""

    what: Literal["items", "width", "labels"]
    title: str
    rows: list[dict[str, Any]]
    inputs: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    source: str | None = None

    @property
    def n(self) -> int:
        """The headline number of the (first) row: items per model, items, or human labels."""
        return int(self.rows[0]["n"])

    def to_dict(self) -> dict[str, Any]:
        from judgekit.stats._format import json_ready

        return json_ready(self.model_dump())  # type: ignore[no-any-return]

    def table(self) -> Any:
        """A rich table of the rows (the plan's figures)."""
        from rich.table import Table

        t = Table(title=self.title)
        columns = list(dict.fromkeys(k for r in self.rows for k in r))
        for c in columns:
            t.add_column(c, justify="left" if c in ("model", "metric", "rate from") else "right")
        for r in self.rows:
            t.add_row(*(f"[bold]{_cell(r.get(c))}[/]" if c == "n" else _cell(r.get(c)) for c in columns))
        return t

    def lines(self) -> list[str]:
        """The inputs the plan used (stated, or the pilot's estimates) and its conventions, as text lines."""
        out = ["inputs: " + "; ".join(f"{k} = {_cell(v)}" for k, v in self.inputs.items())] if self.inputs else []
        return out + self.notes

    def renderables(self) -> list[Any]:
        """What ``judgekit plan`` prints: the table, then :meth:`lines` (plain text, no markup)."""
        from rich.text import Text

        return [self.table(), *(Text(line) for line in self.lines())]


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return "-" if not math.isfinite(v) else (f"{v:.0f}" if v >= 1000 else f"{v:.4g}")
    return "-" if v is None else str(v)


def _err(message: str, flag: str, path: str | Path | None = None) -> JudgekitError:
    return JudgekitError(message, field=flag, path=path)


def _unit(value: float | None, flag: str, *, closed: bool = False) -> None:
    if value is None:
        return
    ok = (0 <= value <= 1) if closed else (0 < value < 1)
    if not (math.isfinite(value) and ok):
        raise _err(f"expected a number within {'[0, 1]' if closed else '(0, 1)'}, got {value:g}", flag)


def _half(half_width: float | None, width: float | None) -> float:
    if half_width is not None and width is not None:
        raise _err("give --half-width or --width, not both", "--width")
    if half_width is None and width is None:
        raise _err("give the target: --half-width H (or --width W = 2 H)", "--half-width")
    h = half_width if half_width is not None else width / 2  # type: ignore[operator]
    if not (math.isfinite(h) and 0 < h <= 0.5):
        flag = "--half-width" if half_width is not None else "--width"
        raise _err(f"impossible target: the half-width must be within (0, 0.5], got {h:g}", flag)
    return h


def _pilot(results: Any, judge_label: str | None) -> tuple[list[Judgment], str | None]:
    judged, source = judgments_of(results)
    judges = sorted({j.judge for j in judged})
    if judge_label is not None:
        judged = [j for j in judged if j.judge == judge_label]
        if not judged:
            raise _err(f"no judgments by {judge_label!r} (judges: {', '.join(judges)})", "--judge-label")
    elif len(judges) > 1:
        raise _err(f"the results hold several judges ({', '.join(judges)}): pick one with --judge-label",
                   "--judge-label")
    return judged, source


def _model(judged: Sequence[Judgment], model: str, flag: str, source: str | None) -> dict[tuple[str, str], Judgment]:
    models = sorted({j.model for j in judged})
    if model not in models:
        raise _err(f"no model {model!r} in the results (models: {', '.join(models)})", flag, source)
    return {(j.id, j.condition or ""): j for j in judged if j.model == model and j.status == "scored"}


def _value(j: Judgment, metric: str, source: str | None) -> float:
    if metric == "pass":
        return float(bool(j.passed))
    if metric == "overall":
        return float(j.overall)  # type: ignore[arg-type]
    if metric not in j.scores:
        raise _err(f"no score {metric!r} in the results (scores: {', '.join(sorted(j.scores))}; or use pass, "
                   "overall)", "--metric", source)
    return float(j.scores[metric])


def _stats_call(fn: Any, flag: str, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        raise _err(f"impossible target or inputs: {exc}", flag) from None


def plan_items(results: Any = None, *, model_a: str | None = None, model_b: str | None = None,
               metric: str = "pass", diff: float | None = None, rate_a: float | None = None,
               rate_b: float | None = None, correlation: float | None = None, discordance: float | None = None,
               sd_diff: float | None = None, power: float = 0.8, alpha: float = 0.05,
               judge_label: str | None = None) -> Plan:
    """Items per model to detect a difference between two models judged on the same items (paired design).

    From a pilot (``results`` with ``model_a`` and ``model_b``): the items both models have a scored judgment
    of (same id and condition) are the pairs; for ``metric="pass"`` the pilot gives the discordance (share of
    pairs where exactly one model passes), for a score (``overall`` or a criterion) the sd of the per-item
    differences ``B - A``; ``diff`` defaults to the pilot's observed difference. From stated values (no
    ``results``): ``rate_a``, ``rate_b`` and ``correlation`` (or ``discordance``) for pass rates, ``diff`` and
    ``sd_diff`` for a score. Two-sided ``alpha``; McNemar (pass) or paired t (score), normal approximation.
    """
    from judgekit.stats import planning as sp

    _unit(power, "--power")
    _unit(alpha, "--alpha")
    inputs: dict[str, Any] = {}
    notes = [f"paired design: both models judged on the same items; two-sided alpha = {alpha:g}, power = "
             f"{power:g}, normal approximation"]
    source = None
    if results is not None:
        if not model_a or not model_b:
            raise _err("a pilot plan compares two models: give --model-a and --model-b",
                       "--model-a" if not model_a else "--model-b")
        if model_a == model_b:
            raise _err("--model-a and --model-b are the same model", "--model-b")
        judged, source = _pilot(results, judge_label)
        a, b = _model(judged, model_a, "--model-a", source), _model(judged, model_b, "--model-b", source)
        keys = sorted(a.keys() & b.keys())
        if len(keys) < MIN_PILOT:
            raise _err(f"pilot too small: {len(keys)} items with a scored judgment of both models (need at least "
                       f"{MIN_PILOT})", "--results", source)
        xa = [_value(a[k], metric, source) for k in keys]
        xb = [_value(b[k], metric, source) for k in keys]
        n0 = len(keys)
        inputs.update({"pilot pairs": n0, "model A": model_a, "model B": model_b})
        if metric == "pass":
            p10 = sum(1 for u, v in zip(xa, xb, strict=True) if u > v) / n0
            p01 = sum(1 for u, v in zip(xa, xb, strict=True) if v > u) / n0
            ra, rb = sum(xa) / n0, sum(xb) / n0
            sd = math.sqrt(ra * (1 - ra) * rb * (1 - rb))
            phi: Any = ((1 - p10 - p01) - (ra * rb + (1 - ra) * (1 - rb))) / (2 * sd) if sd else None
            if phi is None:  # a model with one verdict on every pilot item: the discordance still plans
                m, r = (model_a, ra) if ra in (0.0, 1.0) else (model_b, rb)
                phi = f"undefined ({m} {'passes' if r == 1 else 'fails'} every pilot item)"
            inputs.update({"pilot rate A": ra, "pilot rate B": rb, "pilot diff B-A": rb - ra,
                           "pilot discordance": p10 + p01, "pilot correlation": phi})
            if diff is None:
                diff = rb - ra
            rate_a, rate_b = ra, ra + diff
            if discordance is None and correlation is not None:  # keep the stated correlation at the target rates
                _unit(rate_b, "--diff", closed=True)
                p10, p01 = _stats_call(sp.discordance_from_rates, "--correlation", rate_a, rate_b, correlation)
                inputs["correlation"] = correlation
                discordance = p10 + p01
            elif discordance is None:
                discordance = p10 + p01
                notes.append(f"the plan keeps the pilot's discordance ({n0} pairs: a rough estimate) at the target "
                             "difference; --correlation keeps a correlation instead, --discordance states one")
        else:
            d = [v - u for u, v in zip(xa, xb, strict=True)]
            mean = sum(d) / n0
            sd_pilot = math.sqrt(sum((x - mean) ** 2 for x in d) / (n0 - 1))
            inputs.update({"pilot mean diff B-A": mean, "pilot sd of diffs": sd_pilot})
            sd_diff = sd_diff if sd_diff is not None else sd_pilot
            if diff is None:
                diff = mean
        if diff == 0:
            raise _err("the pilot shows no difference: give the difference to detect", "--diff")
    else:
        if metric == "pass":
            if rate_a is None or rate_b is None:
                raise _err("without --results give the pass rates --rate-a and --rate-b (and --correlation or "
                           "--discordance)", "--rate-a" if rate_a is None else "--rate-b")
            _unit(rate_a, "--rate-a", closed=True)
            _unit(rate_b, "--rate-b", closed=True)
            if rate_a == rate_b:
                raise _err("the two rates are equal: no difference to detect", "--rate-b")
            diff = rate_b - rate_a
            if discordance is None:
                if correlation is None:
                    raise _err("give how the models' verdicts go together: --correlation (phi, e.g. 0.5) or "
                               "--discordance (share of items where exactly one passes)", "--correlation")
                p10, p01 = _stats_call(sp.discordance_from_rates, "--correlation", rate_a, rate_b, correlation)
                discordance = p10 + p01
                inputs.update({"correlation": correlation})
            inputs.update({"rate A": rate_a, "rate B": rate_b})
        else:
            if diff is None or sd_diff is None:
                raise _err("without --results give --diff and --sd-diff (sd of the per-item differences)",
                           "--diff" if diff is None else "--sd-diff")
    row: dict[str, Any] = {"metric": metric, "diff": diff}
    if metric == "pass":
        _unit(discordance, "--discordance", closed=True)
        if abs(diff) > discordance:  # type: ignore[arg-type,operator]
            raise _err(f"impossible target: a difference of {abs(diff):g} needs at least that share of items on "  # type: ignore[arg-type]
                       f"which the models disagree, but the discordance is {discordance:g}; give --discordance or "
                       "--correlation",
                       "--diff")
        n = _stats_call(sp.items_for_paired_rates, "--diff", diff, discordance, power=power, alpha=alpha)
        row.update({"discordance": discordance, "n": n,
                    "power at n": sp.paired_rate_power(n, diff, discordance, alpha=alpha)})  # type: ignore[arg-type]
        if rate_a is not None and rate_b is not None and 0 <= rate_b <= 1 and rate_a != rate_b:
            row["n if unpaired"] = sp.items_for_two_rates(rate_a, rate_b, power=power, alpha=alpha)
        notes.append("n: items per model (pairs) for the McNemar test (no continuity correction); the exact "
                     "McNemar test that 'judgekit report' runs is slightly conservative (a few points less power). "
                     "n if unpaired: items per model with different items for each model.")
    else:
        if not (sd_diff is not None and math.isfinite(sd_diff) and sd_diff > 0):
            raise _err("the sd of the per-item differences must be above 0 (the pilot's differences are all "
                       "equal?): give --sd-diff", "--sd-diff")
        n = _stats_call(sp.items_for_paired_means, "--diff", diff, sd_diff, power=power, alpha=alpha)
        row.update({"sd of diffs": sd_diff, "n": n,
                    "power at n": sp.paired_mean_power(n, diff, sd_diff, alpha=alpha)})  # type: ignore[arg-type]
        notes.append(f"n: items per model (pairs) for the paired t-test of the mean {metric} score "
                     "(normal approximation + z^2/2)")
    return Plan(what="items", title=f"Items per model to detect a difference of {diff:+.4g} in {metric}",
                rows=[row], inputs=inputs, notes=notes, source=source)


def plan_width(results: Any = None, *, half_width: float | None = None, width: float | None = None,
               rate: float | None = None, model: str | None = None, confidence: float = 0.95,
               judge_label: str | None = None) -> Plan:
    """Items for a pass rate's Wilson interval to have at most ``half_width`` (or ``width / 2``).

    The rate the plan assumes: ``rate`` if given; else a pilot's (``results``): the pass rate of ``model``, or
    without one, of the model whose rate is nearest 0.5 (the most demanding); else 0.5, the worst case, which
    holds whatever rate is observed."""
    from judgekit.stats import planning as sp

    h = _half(half_width, width)
    _unit(confidence, "--confidence")
    _unit(rate, "--rate", closed=True)
    inputs: dict[str, Any] = {}
    source = None
    if rate is not None:
        used, origin = rate, "--rate"
    elif results is not None:
        judged, source = _pilot(results, judge_label)
        models = sorted({j.model for j in judged}) if model is None else [model]
        rates = {}
        for m in models:
            scored = list(_model(judged, m, "--model", source).values())
            if len(scored) < MIN_PILOT:
                raise _err(f"pilot too small: {len(scored)} scored judgments of {m!r} (need at least {MIN_PILOT})",
                           "--results", source)
            rates[m] = sum(1 for j in scored if j.passed) / len(scored)
            inputs[f"pilot rate {m}"] = rates[m]
        pick = min(rates, key=lambda m: (abs(rates[m] - 0.5), m))
        used, origin = rates[pick], f"pilot: {pick}"
    else:
        used, origin = 0.5, "worst case 0.5"
    n = _stats_call(sp.items_for_half_width, "--half-width", h, used, confidence=confidence)
    row: dict[str, Any] = {"rate": used, "rate from": origin, "half-width": h, "n": n,
                           "half-width at n": sp.wilson_half_width(n, used, confidence=confidence)}
    if used != 0.5:
        row["n worst case"] = sp.items_for_half_width(h, 0.5, confidence=confidence)
    notes = [f"n: scored items per model for the {100 * confidence:g} % Wilson interval's half-width (half its "
             "length) to be at most the target when the observed rate is the rate used; at rate 0.5 (worst case) "
             "it holds for any observed rate"]
    return Plan(what="width", title=f"Items for a pass-rate interval of half-width {h:g}", rows=[row],
                inputs=inputs, notes=notes, source=source)


def _label_moments(results: Any, human: str | Path, model: str | None, criterion: str, threshold: float,
                   judge_label: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Per model: the pilot's labelled pairs (human pass, judge pass) and the judge's verdicts on every answer."""
    import numpy as np

    from judgekit.io.ratings import join, read_ratings

    judged, source = _pilot(results, judge_label)
    if model is not None:
        _model(judged, model, "--model", source)
    ratings = read_ratings(human, criterion=criterion)
    jn = join(judged, ratings, criterion, threshold=threshold)
    judge_pass = {(j.id, j.model, j.condition or ""): bool(j.passed) for j in judged
                  if j.status == "scored" and j.passed is not None}
    human_pass: dict[tuple[str, str, str], bool] = {}
    for i, key in enumerate(zip(jn.ids, jn.models, jn.conditions, strict=True)):
        r = jn.humans[i][~np.isnan(jn.humans[i])]
        if r.size and key in judge_pass:  # as judgekit agree's PPI: majority label, or mean rating >= threshold
            human_pass[key] = bool(r.mean() > 0.5) if jn.kind == "binary" else bool(r.mean() >= threshold)
    out = []
    for m in sorted({k[1] for k in judge_pass}) if model is None else [model]:
        f_all = [float(v) for k, v in judge_pass.items() if k[1] == m]
        pairs = [(float(human_pass[k]), float(judge_pass[k])) for k in human_pass if k[1] == m]
        out.append({"model": m, "f_all": f_all, "pairs": pairs})
    return out, source


def plan_labels(results: Any = None, human: str | Path | None = None, *, half_width: float | None = None,
                width: float | None = None, unlabeled: int | None = None, judged: int | None = None,
                model: str | None = None, human_rate: float | None = None, judge_rate: float | None = None,
                agreement: float | None = None, criterion: str = "overall", threshold: float = 3.0,
                confidence: float = 0.95, power_tuning: bool = True, judge_label: str | None = None) -> Plan:
    """Human labels for a PPI++ interval of the human pass rate of at most ``half_width`` (or ``width / 2``),
    against human labels alone.

    ``unlabeled``: ``N`` judged answers besides the labelled ones; or ``judged``: ``M`` judged answers in all,
    ``n`` of which are labelled (``N = M - n``, as ``judgekit agree`` splits them). The judge-human moments come
    from a pilot (``results`` + ``human`` ratings: per model, var(Y) and cov(Y, f) over the labelled answers,
    var(f) over every judged one; human pass = majority label, or mean rating >= ``threshold``) or from stated
    ``human_rate``, ``judge_rate`` and ``agreement`` (share of answers where judge and people agree)."""
    from judgekit.stats import planning as sp

    h = _half(half_width, width)
    _unit(confidence, "--confidence")
    if (unlabeled is None) == (judged is None):
        raise _err("give the judged answers: --unlabeled N (besides the labelled ones) or --judged M (in all)",
                   "--unlabeled")
    for flag, v in (("--unlabeled", unlabeled), ("--judged", judged)):
        if v is not None and v < (1 if flag == "--unlabeled" else 3):
            raise _err(f"too few answers: {v}", flag)
    inputs: dict[str, Any] = {"N unlabelled" if unlabeled is not None else "M judged in all": unlabeled or judged}
    source = None
    groups: list[tuple[str | None, float, float, float]] = []
    if results is not None:
        if human is None:
            raise _err("a pilot plan needs the human ratings of some of the pilot's answers", "--human")
        pilots, source = _label_moments(results, human, model, criterion, threshold, judge_label)
        for p in pilots:
            pairs, f_all, m = p["pairs"], p["f_all"], p["model"]
            if len(pairs) < MIN_PILOT:
                if model is None and len(pilots) > 1:
                    continue
                raise _err(f"pilot too small: {len(pairs)} human-labelled answers of {m!r} (need at least "
                           f"{MIN_PILOT})", "--human", human)
            n0 = len(pairs)
            y_bar = sum(y for y, _ in pairs) / n0
            f_bar = sum(f for _, f in pairs) / n0
            var_y = sum((y - y_bar) ** 2 for y, _ in pairs) / (n0 - 1)
            cov = sum((y - y_bar) * (f - f_bar) for y, f in pairs) / (n0 - 1)
            fa = sum(f_all) / len(f_all)
            var_f = sum((f - fa) ** 2 for f in f_all) / (len(f_all) - 1)
            inputs[f"pilot {m}"] = (f"{n0} labelled, human rate {y_bar:.3f}, judge rate {fa:.3f}, agreement "
                                    f"{sum(1 for y, f in pairs if y == f) / n0:.3f}")
            if var_y == 0:
                raise _err(f"every pilot label of {m!r} is the same: the pilot cannot tell the spread of human "
                           "verdicts; label more answers or state --human-rate", "--human", human)
            groups.append((m, var_y, var_f, cov))
        if not groups:
            raise _err(f"pilot too small: no model has {MIN_PILOT} human-labelled answers", "--human", human)
    else:
        missing = [f for f, v in (("--human-rate", human_rate), ("--judge-rate", judge_rate),
                                  ("--agreement", agreement)) if v is None]
        if missing:
            raise _err("without --results give --human-rate, --judge-rate and --agreement (judge-human agreement "
                       "rates)", missing[0])
        for flag, v in (("--human-rate", human_rate), ("--judge-rate", judge_rate), ("--agreement", agreement)):
            _unit(v, flag, closed=True)
        var_y, var_f, cov = _stats_call(sp.moments_from_agreement, "--agreement", human_rate, judge_rate, agreement)
        if var_y == 0:
            raise _err("a human rate of 0 or 1 leaves nothing to estimate", "--human-rate")
        inputs.update({"human rate": human_rate, "judge rate": judge_rate, "agreement": agreement})
        groups.append((None, var_y, var_f, cov))
    rows = []
    for m, var_y, var_f, cov in groups:
        lp = _stats_call(sp.labels_for_half_width, "--half-width", h, var_y, var_f, cov,
                         n_unlabeled=unlabeled, n_total=judged, confidence=confidence, power_tuning=power_tuning)
        row: dict[str, Any] = {"model": m} if m is not None else {}
        row.update({"n": lp.n_labels, "N": int(lp.n_unlabeled), "half-width at n": lp.half_width, "lambda": lp.lam,
                    "n human-only": lp.n_human_only, "labels saved": lp.labels_saved,
                    "var(Y)": var_y, "var(f)": var_f, "cov(Y,f)": cov})
        rows.append(row)
    notes = [f"n: human labels (a uniform random subset of the judged answers) for the {100 * confidence:g} % "
             f"{'PPI++' if power_tuning else 'PPI'} interval of the human pass rate to have half-width <= {h:g}: "
             "var = var(Y - lambda f) / n + lambda^2 var(f) / N, lambda = cov(Y, f) / ((1 + n/N) var(f)) clipped "
             "to [0, 1], as 'judgekit agree' computes it; n human-only: labels alone (CLT, var(Y) / n)."]
    if results is not None:
        notes.append("one plan per model: 'judgekit agree' estimates the human pass rate of each model separately")
    return Plan(what="labels", title=f"Human labels for a human pass-rate interval of half-width {h:g}", rows=rows,
                inputs=inputs, notes=notes, source=source)


def plan(what: Literal["items", "width", "labels"], *args: Any, json: str | Path | None = None,
         **kwargs: Any) -> Plan:
    """What ``judgekit plan WHAT`` prints: :func:`plan_items`, :func:`plan_width` or :func:`plan_labels` with
    these arguments; ``json`` also writes :meth:`Plan.to_dict`."""
    from judgekit.io.dataio import atomic_write_json

    makers = {"items": plan_items, "width": plan_width, "labels": plan_labels}
    if what not in makers:
        raise JudgekitError(f"unknown plan {what!r} (items, width or labels)")
    json_path = as_path(json)
    check_suffix(json_path, "--json", (".json",))
    check_writable(json_path, "--json")
    result = makers[what](*args, **kwargs)
    if json_path is not None:
        atomic_write_json(json_path, result.to_dict())
    return result
