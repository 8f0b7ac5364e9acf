"""``judgekit.probe``: bias probes of a judge (``judgekit probe`` prints what it returns).

A sample of answers is judged unchanged (the baseline) and after controlled changes (verbosity padding,
injected instructions, the degraded image instead of the clean one; :mod:`judgekit.judging.probes`), and the
baseline is re-sampled for self-consistency; :mod:`judgekit.stats.probes` computes the shifts, flips and
intervals. Every call goes through the runner and the store of ``judgekit judge``: resumable, accounted,
never paid twice, and a baseline already judged into the same store by ``judgekit judge`` (same judge,
settings, rubric) is read from it, not paid again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgekit.api._util import (
    as_path,
    check_number,
    check_suffix,
    check_writable,
    correction_arg,
    names,
    new_store_cleanup,
    shown_while_running,
)
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Judgment, Response
from judgekit.judging.rubric import Rubric

if TYPE_CHECKING:
    from judgekit.judging.backends import JudgeSpec
    from judgekit.judging.runner import RunOptions, RunReport

DEFAULT_SAMPLE = 100
DEFAULT_CONSISTENCY_SAMPLES = 5


class ProbeInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`probe`: nothing was written; every finished call is in the store (the same call
    again resumes). ``calls_made`` counts this run's calls."""

    def __init__(self, calls_made: int) -> None:
        super().__init__("interrupted")
        self.calls_made = calls_made


@dataclass
class ProbeReport:
    """What :func:`probe` returns: per probe the shift of every criterion and of overall, the pass flips
    (:class:`judgekit.stats.probes.ProbeShift`), the self-consistency of the baseline
    (:class:`judgekit.stats.probes.Consistency`), and how the calls were obtained."""

    judge: str  # the judge's label in the results (a panel: panel:a+b)
    judges: list[str]
    rubric: dict[str, str]
    settings: dict[str, Any]
    sample: dict[str, Any]  # answers probed, per model
    shifts: list[Any] = field(default_factory=list)
    consistency: Any = None
    items: list[dict[str, Any]] = field(default_factory=list)
    accounting: dict[str, Any] = field(default_factory=dict)
    complete: bool = True
    notes: list[str] = field(default_factory=list)
    criteria: list[str] = field(default_factory=list)
    correction: str = "holm"  # the multiple-comparison adjustment of the table's tests (stats.probes.correct_probes)

    def to_dict(self) -> dict[str, Any]:
        """What ``judgekit probe --out`` writes (JSON; NaN as null). The schema is in the README ("Bias
        probes"); the p-values adjusted by :attr:`correction` and its family are set by
        :func:`judgekit.stats.probes.correct_probes`."""
        from judgekit.stats._format import json_ready
        from judgekit.stats.probes import correct_probes

        doc = json_ready({"kind": "judgekit-probes", "version": 1, "judge": self.judge, "judges": self.judges,
                          "rubric": self.rubric, "settings": self.settings, "sample": self.sample,
                          "criteria": self.criteria, "probes": [s.to_dict() for s in self.shifts],
                          "self_consistency": self.consistency.to_dict() if self.consistency else None,
                          "complete": self.complete, "notes": self.notes, "accounting": self.accounting,
                          "items": self.items})
        return correct_probes(doc, self.correction)

    def table(self) -> Any:
        """The probes as the rich table ``judgekit probe`` prints."""
        from judgekit.reporting.probes import probe_table

        return probe_table(self.to_dict())

    def markdown(self) -> str:
        """The probes as Markdown (``judgekit probe --markdown``)."""
        from judgekit.reporting.probes import probes_markdown

        return probes_markdown(self.to_dict())


def _scores(j: Judgment) -> dict[str, float] | None:
    if j.status != "scored" or j.overall is None:
        return None
    return {**j.scores, "overall": float(j.overall)}


def _sample_values(rubric: Rubric, scores: dict[str, int]) -> dict[str, float]:
    values = {k: float(v) for k, v in scores.items()}
    overall = rubric.compute_overall(values)
    return {**{k: v for k, v in values.items() if k != "overall"}, "overall": overall}


def _units(j: Judgment) -> list[Judgment]:
    return list(j.panel) if j.panel else [j]


def _run(responses: list[Response], rubric: Rubric, specs: list[JudgeSpec], options: RunOptions, store: Path,
         progress: Callable[[int, int, float], None] | None, notify: Callable[[str], None] | None) -> RunReport:
    from judgekit.judging.runner import Runner
    from judgekit.judging.store import Store

    with new_store_cleanup(store), Store(store) as st:
        runner = Runner(responses, rubric, specs, st, options, progress, notify=notify)
        with shown_while_running(progress):
            try:
                report = runner.run_sync()
            except KeyboardInterrupt:
                report = runner.report
                report.interrupted = True
    return report


def _add(acc: dict[str, Any], rep: RunReport) -> None:
    for k in ("calls_made", "calls_cached", "tokens_in", "tokens_out", "unpriced_calls", "transport_failures"):
        acc[k] = acc.get(k, 0) + int(getattr(rep, k))
    acc["cost"] = acc.get("cost", 0.0) + float(rep.cost)
    acc["wall_s"] = round(acc.get("wall_s", 0.0) + float(rep.wall_s), 3)
    acc["budget_reached"] = acc.get("budget_reached", False) or rep.budget_reached


def probe(responses: Any, rubric: str | Path | Rubric, judges: str | Sequence[str], *, out: str | Path | None = None,
          markdown: str | Path | None = None, probes: str | Sequence[str] | None = None, n: int = DEFAULT_SAMPLE,
          consistency_samples: int = DEFAULT_CONSISTENCY_SAMPLES, injections: str | Sequence[str] | None = None,
          custom_injections: Sequence[str] = (), baseline: str = "clean", store: str | Path = "judgekit-store.sqlite",
          concurrency: int = 16, samples: int = 1, reduce: str = "mean", reasks: int = 2, retries: int = 6,
          timeout: float = 120.0, temperature: float = 0.0, seed: int = 0, max_tokens: int = 512,
          response_format: str = "auto", no_images: bool = False, api_base: str | Sequence[str] | None = None,
          deployments: str | Path | Sequence[Any] | None = None,
          api_key_env: str | None = None, backend: str = "auto", rpm: float | None = None, tpm: float | None = None,
          max_cost: float | None = None, price_in: float | None = None, price_out: float | None = None,
          panel_reduce: str = "mean", panel_quorum: int | None = None, local_mode: str | None = None,
          calibration: str | Path | None = None, threads: int | None = None, boot: int = 2000,
          correction: str = "holm", progress: Callable[[int, int, float], None] | None = None,
          notify: Callable[[str], None] | None = None) -> ProbeReport:
    """Measure a judge's biases: what ``judgekit probe`` does, without printing.

    ``n`` answers (default 100) are drawn from ``responses`` stratified by model (the answers on the
    ``baseline`` condition; :func:`judgekit.judging.probes.sample_answers`, seeded by ``seed``) and judged
    unchanged and under each probe of ``probes`` (default all: verbosity, injection, self-consistency, image).
    ``injections`` picks the shipped phrasings (default all four); ``custom_injections`` adds phrasings of your
    own (``{max}`` is replaced by the top score). Self-consistency re-samples the baseline
    ``consistency_samples`` times (default 5) at ``temperature``: use the judging run's temperature, since that
    is the judge being vouched for. The judge options are those of :func:`judgekit.judge`; give the same
    ``store`` and settings as the judging run and the baseline is read from it instead of paid again.

    ``correction`` (``"holm"``, the default: Holm-Bonferroni; ``"bh"``: Benjamini-Hochberg; ``"none"``) adjusts
    the p-values of the probes table for multiple comparisons, the family being every probe's Wilcoxon test of
    overall and McNemar test of its flips (:func:`judgekit.stats.probes.correct_probes`); the tables star a
    verdict by its adjusted p-value.

    Returns a :class:`ProbeReport` (figures: :mod:`judgekit.stats.probes`, ``boot`` bootstrap resamples).
    ``out`` (.json) gets :meth:`ProbeReport.to_dict`, ``markdown`` (.md) the tables; both are checked before
    any call is made. Ctrl-C raises :class:`ProbeInterrupted` and writes nothing; a budget stop or transport
    failures leave ``complete`` False (their answers count as unscored; the same call again continues).
    """
    from judgekit.api.judging import judge_specs, load_rubric_arg, responses_of
    from judgekit.io.dataio import atomic_write_json, atomic_write_text
    from judgekit.judging.probes import INJECTIONS, PROBES, build_variants, sample_answers
    from judgekit.judging.runner import RunOptions
    from judgekit.stats.probes import pooled_shift, probe_shift, self_consistency

    rubric_obj = load_rubric_arg(rubric)
    wanted = _comma_names(probes) or list(PROBES)
    for p in wanted:
        if p not in PROBES:
            raise JudgekitError(f"unknown probe {p!r} (known: {', '.join(PROBES)})", field="--probes")
    kinds = _comma_names(injections) or list(INJECTIONS)
    for k in kinds:
        if k not in INJECTIONS:
            raise JudgekitError(f"unknown injection {k!r} (known: {', '.join(INJECTIONS)})", field="--injections")
    custom = {f"custom{i + 1}": text for i, text in enumerate(custom_injections)}
    for name, text in custom.items():
        if not text.strip():
            raise JudgekitError(f"{name} is empty", field="--injection-text")
    check_number(n, "--n", lo=1)
    check_number(consistency_samples, "--consistency-samples", lo=2)
    check_number(boot, "--boot", lo=1)
    correction = correction_arg(correction)
    for value, flag, above in ((timeout, "--timeout", True), (temperature, "--temperature", False)):
        check_number(value, flag, above=above)
    out_path, md_path = as_path(out), as_path(markdown)
    check_suffix(out_path, "--out", (".json",))
    check_suffix(md_path, "--markdown", (".md",))
    check_writable(out_path, "--out")
    check_writable(md_path, "--markdown")
    resp = responses_of(responses)
    specs = judge_specs(names(judges), api_base=names(api_base), backend=backend, temperature=temperature,
                        seed=seed, max_tokens=max_tokens, timeout=timeout, response_format=response_format,
                        no_images=no_images, api_key_env=api_key_env, price_in=price_in, price_out=price_out,
                        local_mode=local_mode, calibration=calibration, threads=threads, deployments=deployments)
    options = RunOptions(concurrency=concurrency, samples=samples, reduce=reduce,  # type: ignore[arg-type]
                         reasks=reasks, retries=retries, requests_per_minute=rpm, tokens_per_minute=tpm,
                         max_cost=max_cost, panel_reduce=panel_reduce,  # type: ignore[arg-type]
                         panel_quorum=panel_quorum)
    options.validate()

    chosen = sample_answers(resp, n, seed=seed, baseline=baseline)
    variants = build_variants(chosen, rubric_obj, wanted, seed=seed, all_responses=resp, baseline=baseline,
                              injections=[*kinds, *custom], custom=custom)
    notes: list[str] = []
    if "image" in wanted and not any(v.probe == "image" for v in variants):
        notes.append("image: no answer on the baseline condition has an item with a degraded image: not measured")
    store_path = Path(store)
    acc: dict[str, Any] = {}
    first = _run([*chosen, *(v.response for v in variants)], rubric_obj, specs, options, store_path, progress,
                 notify)
    _add(acc, first)
    if first.interrupted:
        raise ProbeInterrupted(acc["calls_made"])
    base = first.judgments[:len(chosen)]
    probed = first.judgments[len(chosen):]
    consistency_runs: list[Judgment] = []
    if "self-consistency" in wanted:
        more = dataclasses.replace(options, samples=max(consistency_samples, samples))
        second = _run(list(chosen), rubric_obj, specs, more, store_path, progress, notify)
        _add(acc, second)
        if second.interrupted:
            raise ProbeInterrupted(acc["calls_made"])
        consistency_runs = second.judgments
        if temperature == 0:
            notes.append("self-consistency at temperature 0: it measures the judge's nondeterminism only")

    metrics = [*rubric_obj.criterion_names, "overall"]
    base_scores = [_scores(j) for j in base]
    base_pass = [j.passed if j.status == "scored" else None for j in base]
    shifts = []
    items: list[dict[str, Any]] = []
    by_name: dict[str, list[int]] = {}
    for k, v in enumerate(variants):
        by_name.setdefault(v.name, []).append(k)
    families: dict[str, list[str]] = {}
    for name, ks in by_name.items():
        family = variants[ks[0]].probe
        families.setdefault(family, []).append(name)
        side: list[dict[str, float] | None] = [None] * len(chosen)
        side_pass: list[bool | None] = [None] * len(chosen)
        covered = [False] * len(chosen)
        ratios = []
        for k in ks:
            v, j = variants[k], probed[k]
            side[v.base], side_pass[v.base] = _scores(j), (j.passed if j.status == "scored" else None)
            covered[v.base] = True
            b = base[v.base]
            if family == "verbosity" and chosen[v.base].response:
                ratios.append(len(v.response.response) / len(chosen[v.base].response.rstrip() or " "))
            items.append({"probe": name, "id": v.response.id, "model": v.response.model,
                          "condition": v.response.condition, "baseline_overall": b.overall,
                          "baseline_passed": b.passed, "probe_overall": j.overall, "probe_passed": j.passed,
                          "probe_status": j.status, "probe_reason": j.reason})
        idx = [i for i in range(len(chosen)) if covered[i]]
        extra = {"mean_length_ratio": math.fsum(ratios) / len(ratios)} if ratios else None
        shifts.append(probe_shift([base_scores[i] for i in idx], [side[i] for i in idx],
                                  [base_pass[i] for i in idx], [side_pass[i] for i in idx], metrics, probe=name,
                                  family=family, n_boot=boot, seed=seed, extra=extra))
    if len(families.get("injection", [])) > 1:  # every phrasing covers every sampled answer
        ks_by = [by_name[nm] for nm in families["injection"]]
        sides = [[_scores(probed[k]) for k in ks] for ks in ks_by]
        passes = [[probed[k].passed if probed[k].status == "scored" else None for k in ks] for ks in ks_by]
        pooled = pooled_shift(base_scores, sides, base_pass, passes, metrics, probe="injection (any)",
                              family="injection", n_boot=boot, seed=seed)
        last = max(i for i, s in enumerate(shifts) if s.family == "injection")
        shifts.insert(last + 1, pooled)
    consistency = None
    if consistency_runs:
        rows, verdicts = [], []
        for j in consistency_runs:
            for u in _units(j):
                vals = [_sample_values(rubric_obj, s.scores) if s.status == "scored" else None for s in u.samples]
                rows.append(vals)
                verdicts.append([rubric_obj.passed(v) if v is not None else None for v in vals])
        consistency = self_consistency(rows, verdicts, metrics, asked=max(consistency_samples, samples),
                                       n_boot=boot, seed=seed)
    per_model: dict[str, int] = {}
    for r in chosen:
        per_model[r.model] = per_model.get(r.model, 0) + 1
    images = {s.model: ("no (local judge: text only)" if s.model.startswith("local/") else
                        "no (--no-images)" if s.images == "no" else "yes, when the server accepts them")
              for s in specs}
    label = base[0].judge if base else (specs[0].model if len(specs) == 1 else "panel")
    complete = not (acc.get("transport_failures") or acc.get("budget_reached"))
    settings = {"temperature": temperature, "seed": seed, "samples": samples, "reduce": reduce,
                "consistency_samples": max(consistency_samples, samples) if consistency_runs else None,
                "panel_reduce": panel_reduce if len(specs) > 1 else None,
                "panel_quorum": (panel_quorum or len(specs) // 2 + 1) if len(specs) > 1 else None,
                "max_tokens": max_tokens, "response_format": response_format, "images_sent": images,
                "baseline_condition": baseline, "probes": wanted, "injections": [*kinds, *custom],
                "custom_injections": custom, "boot": boot,
                "local_mode": {s.model: s.extra.get("mode") for s in specs if s.model.startswith("local/")} or None}
    from judgekit import __version__

    rep = ProbeReport(judge=label, judges=[s.model for s in specs],
                      rubric={"name": rubric_obj.name, "version": rubric_obj.version,
                              "sha256": rubric_obj.fingerprint},
                      settings={**settings, "judgekit": __version__},
                      sample={"answers": len(chosen), "asked": n, "per_model": per_model,
                              "with_images": sum(bool(r.images) for r in chosen),
                              "responses_sha256": _responses_digest(resp)},
                      shifts=shifts, consistency=consistency, items=items, accounting=acc, complete=complete,
                      notes=notes, criteria=list(rubric_obj.criterion_names), correction=correction)
    if out_path is not None:
        atomic_write_json(out_path, rep.to_dict())
    if md_path is not None:
        atomic_write_text(md_path, rep.markdown())
    return rep


def _comma_names(value: str | Sequence[str] | None) -> list[str]:
    """Names given one by one or comma-separated (the CLI's ``--probes a,b``), blanks dropped."""
    return [part.strip() for v in names(value) for part in v.split(",") if part.strip()]


def _responses_digest(responses: Sequence[Response]) -> str:
    """sha256 over the answers' keys and texts (which responses the probes were drawn from)."""
    h = hashlib.sha256()
    for r in responses:
        h.update("\x1f".join([*r.uid, r.response]).encode("utf-8", "surrogatepass") + b"\x1e")
    return h.hexdigest()


__all__ = ["DEFAULT_CONSISTENCY_SAMPLES", "DEFAULT_SAMPLE", "ProbeInterrupted", "ProbeReport", "probe"]
