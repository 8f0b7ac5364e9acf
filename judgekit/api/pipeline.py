"""The other stages as functions: ``judgekit.perturb`` (degraded images), ``judgekit.generate`` (the models under
test answer), and :func:`mcq`, :func:`export`, :func:`validate_local` (``judgekit mcq``, ``export`` and
``validate`` without printing)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgekit.api._util import (
    as_path,
    check_number,
    check_records_out,
    check_writable,
    correction_arg,
    new_store_cleanup,
    shown_while_running,
)
from judgekit.api._util import names as name_list
from judgekit.api.judging import DEFAULT_STORE, local_spec
from judgekit.io.errors import JudgekitError

if TYPE_CHECKING:
    from judgekit.generation.candidates import GenerationReport
    from judgekit.generation.mcq import MCQReport
    from judgekit.perturbation.files import PerturbResult


class GenerationInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`generate`: no responses file was written, every answer that finished is in the
    store (the same call again resumes); ``report`` holds what this run got."""

    def __init__(self, report: GenerationReport) -> None:
        super().__init__("interrupted")
        self.report = report


def perturb(input: str | Path, out: str | Path, *, ops: str | Sequence[str] | None = None,
            severity: str | int | Sequence[int] = "3", preset: str | None = None, seed: int | None = None,
            fmt: str = "same", threads: int | None = None, opencv_filter2d: bool = False,
            progress: Callable[[int, int], None] | None = None) -> PerturbResult:
    """Degrade every image of ``input`` (a folder of images or an items file) under each condition, as
    ``judgekit perturb`` does: the copies, ``OUT/manifest.jsonl`` and, for an items file, ``OUT/items.jsonl``
    (clean + degraded items, ready for :func:`generate`).

    Give ``ops`` (``"motion_blur,low_light:noise=1,jpeg+gaussian_noise"`` or a list of such conditions; every
    condition at each ``severity``: ``3``, ``"1-5"``, ``"1,3,5"`` or a list) or ``preset="robustmad"``
    (RobustMAD's exact degradations, one per image pair, assigned with ``seed``, default 42;
    ``opencv_filter2d`` blurs with their original cv2.filter2D call). ``seed`` (default 0) seeds the random
    operations; ``fmt``: ``same``, ``png`` or ``jpg``; ``threads`` default all cores; ``progress(done, total)``
    per source image. Returns the :class:`~judgekit.perturbation.files.PerturbResult` (manifest rows, paths,
    timings, what an earlier run's output lost).
    """
    import os

    from judgekit.perturbation.files import parse_conditions, parse_severities, run_perturb

    ops_text = ",".join(name_list(ops)) if ops is not None else None
    if preset and ops_text:
        raise JudgekitError("give --ops or --preset, not both", field="--preset")
    if not preset and not ops_text:
        raise JudgekitError("give --ops (e.g. motion_blur,low_light) or --preset robustmad", field="--ops")
    if opencv_filter2d and not preset:
        raise JudgekitError("--opencv-filter2d applies to --preset robustmad only", field="--opencv-filter2d")
    check_number(threads, "--threads", lo=1)
    if not isinstance(severity, str):
        severity = str(severity) if isinstance(severity, int) else ",".join(str(s) for s in severity)
    conditions = None if preset else parse_conditions(ops_text or "", parse_severities(severity))
    return run_perturb(Path(input), Path(out), conditions=conditions, preset=preset, seed=seed, fmt=fmt,
                       threads=threads or os.cpu_count() or 1,
                       robustmad_impl="filter2d" if opencv_filter2d else "exact", progress=progress)


def generate(items: str | Path, models: str | Sequence[str], *, out: str | Path | None = None,
             store: str | Path = DEFAULT_STORE, names: Sequence[str] | None = None,
             api_base: str | Sequence[str] | None = None, backend: str = "auto", api_key_env: str | None = None,
             preset: str = "plain", temperature: float | None = None, max_tokens: int | None = None,
             seed: int = 0, no_images: bool = False, concurrency: int = 16, retries: int = 6,
             timeout: float = 120.0, rpm: float | None = None, tpm: float | None = None,
             threads: int | None = None, progress: Callable[[int, int], None] | None = None,
             notify: Callable[[str], None] | None = None, shots: str | int = "0",
             templates: str | Path | None = None, knowledge: str | Path | None = None,
             shots_cache: str | Path | None = None) -> GenerationReport:
    """Ask each model under test every item of ``items`` (images inline), as ``judgekit generate`` does.

    MMAD's prompt settings (:mod:`judgekit.generation.shots`): ``shots`` ``"0"``, ``K`` or ``"1+"`` normal
    template images before the query, from ``templates`` (a folder with one sub-folder per product) or the items
    marked ``meta.normal: true``; ``knowledge`` a domain_knowledge.json file; ``shots_cache`` the folder of the
    retrieval features (default ``<store>.shots``). The setting is recorded in each ``meta.generation``.

    ``models``: litellm provider strings (``openai/...``, ``hosted_vllm/...``) or ``local/default`` (text only);
    ``names`` (one per model; default the model strings) are written as the responses' ``model``.
    ``preset``: ``plain`` (temperature 0, 512 tokens, the question as is) or ``robustmad`` (temperature 0.2,
    <= 100 tokens, a short-answer instruction); ``temperature`` / ``max_tokens`` override it for open
    questions; multiple-choice items are asked greedily for the letter. Every answer goes to the ``store`` as
    it arrives (the same call again asks only for the missing ones). ``out`` (optional) gets the responses
    file (image paths relative to it). Returns the
    :class:`~judgekit.generation.candidates.GenerationReport`: ``responses`` (one per answered item and
    model) and the accounting; items with no answer after every retry are in ``failures`` (not in the
    responses; the CLI's exit 3). Ctrl-C raises :class:`GenerationInterrupted` and writes nothing.
    """
    import os

    from judgekit.generation.candidates import PRESETS, relative_paths, run_generation
    from judgekit.io.dataio import read_items, write_records
    from judgekit.judging.backends import JudgeSpec
    from judgekit.judging.runner import RunOptions
    from judgekit.judging.store import Store

    given_names = name_list(names) or None
    model_list = name_list(models)
    item_list = read_items(items)
    out_path, store_path = as_path(out), Path(store)
    check_records_out(out_path)
    check_writable(out_path, "--out")
    bases = name_list(api_base)
    if len(bases) not in (0, 1, len(model_list)):
        raise JudgekitError(f"give one --api-base for all models or one per --model ({len(model_list)})",
                            field="--api-base")
    if given_names and len(given_names) != len(model_list):
        raise JudgekitError("give one --name per --model", field="--name")
    if max_tokens is not None and max_tokens < 1:
        raise JudgekitError("must be at least 1", field="--max-tokens")
    if preset not in PRESETS:
        raise JudgekitError(f"unknown preset '{preset}' ({', '.join(PRESETS)})", field="--preset")
    check_number(temperature, "--temperature")
    check_number(timeout, "--timeout", above=True)
    check_number(threads, "--threads", lo=1)
    specs = []
    for i, model in enumerate(model_list):
        base = bases[i] if len(bases) > 1 else (bases[0] if bases else None)
        spec = JudgeSpec(model=model, api_base=base, backend=backend, seed=seed, timeout=timeout,  # type: ignore[arg-type]
                         response_format="none", api_key_env=api_key_env)
        if model.startswith("local/"):
            from importlib.util import find_spec

            if find_spec("torch") is None or find_spec("transformers") is None:
                raise JudgekitError("local models need torch and transformers: pip install 'judgekit[local]'",
                                    field="--model")
        elif spec.resolved_backend() == "lean" and not base:
            raise JudgekitError("--backend lean needs --api-base", field="--backend")
        elif spec.resolved_backend() == "litellm":
            from judgekit.judging.backends.litellm_backend import check_model

            check_model(model, base, "--model", api_key_env=api_key_env)
        spec.api_key()
        specs.append(spec)
    if threads:
        os.environ["JUDGEKIT_THREADS"] = str(threads)
    options = RunOptions(concurrency=concurrency, retries=retries, requests_per_minute=rpm, tokens_per_minute=tpm)
    options.validate()
    from judgekit.generation.shots import make_plan

    plan = make_plan(item_list, shots=shots, templates=as_path(templates), knowledge=as_path(knowledge),
                     items_path=Path(items),
                     cache_dir=as_path(shots_cache) or store_path.with_name(store_path.name + ".shots"))
    with new_store_cleanup(store_path), Store(store_path) as st, shown_while_running(progress):
        report = run_generation(item_list, specs, st, preset=PRESETS[preset], options=options,
                                temperature=temperature, max_tokens=max_tokens, images=not no_images,
                                names=given_names, progress=progress, notify=notify, plan=plan)
    if report.interrupted:
        raise GenerationInterrupted(report)
    if out_path is not None:
        write_records(out_path, relative_paths(report.responses, out_path))
    return report


def mcq(responses: str | Path | Sequence[str | Path], *, mmad_aliases: bool = False, json: str | Path | None = None,
        markdown: str | Path | None = None, correction: str = "holm") -> MCQReport:
    """Score multiple-choice answers as ``judgekit mcq`` does: the letter each answer chose (never guessed: an
    unparsable answer counts as wrong and is reported as its own rate), accuracy per model, condition,
    dataset and subtask, balanced accuracy for anomaly discrimination, MMAD's averages (mean over subtasks,
    then over datasets). ``mmad_aliases`` merges MMAD's Object Structure/Details into Object Analysis.
    ``json`` / ``markdown`` also write the report (every answer's outcome) / its tables. ``responses`` may be
    several files (e.g. one per prompt setting of ``judgekit generate``); with several settings the report has
    the gain of each over the baseline (0-shot when present), paired by id, model and condition; their McNemar
    p-values are adjusted for multiple comparisons by ``correction`` (``"holm"``, the default: Holm-Bonferroni;
    ``"bh"``: Benjamini-Hochberg; ``"none"``), the family being every gain of the table (:func:`correct_gains`)."""
    from judgekit.generation.mcq import MMAD_SUBTASK_ALIASES, SettingGain, mcq_markdown, score_mcq
    from judgekit.generation.mcq_settings import setting_pairs
    from judgekit.io.dataio import atomic_write_json, atomic_write_text, read_responses
    from judgekit.stats.paired_tests import paired_difference

    correction = correction_arg(correction)
    json_path, md_path = as_path(json), as_path(markdown)
    for path, flag, ext in ((json_path, "--json", ".json"), (md_path, "--markdown", ".md")):
        if path is not None and path.suffix.lower() != ext:
            raise JudgekitError(f"expected a {ext} file", path=path, field=flag)
        check_writable(path, flag)
    files = [responses] if isinstance(responses, str | Path) else list(responses)
    answers = [a for f in files for a in read_responses(f, check_images=False)]
    report = score_mcq(answers, subtask_aliases=MMAD_SUBTASK_ALIASES if mmad_aliases else None)
    for model, condition, base, setting, before, after in setting_pairs(report.outcomes):
        d = paired_difference(before, after, binary=True)
        report.setting_gains.append(SettingGain(
            model=model, condition=condition, baseline=base, setting=setting, n=d.n, baseline_accuracy=d.baseline,
            accuracy=d.degraded, diff=d.diff, ci_low=d.ci_low, ci_high=d.ci_high, p_value=d.p_value, note=d.note))
    report.setting_gains[:] = correct_gains(report.setting_gains, correction)  # over every gain of the table
    if json_path is not None:
        atomic_write_json(json_path, report.to_dict())
    if md_path is not None:
        atomic_write_text(md_path, mcq_markdown(report))
    return report


def correct_gains(gains: Sequence[Any], method: str = "holm") -> list[Any]:
    """The :class:`~judgekit.generation.mcq_settings.SettingGain` rows with ``p_adjusted`` set: their McNemar
    p-values adjusted together by ``method`` (``"holm"``, ``"bh"`` or ``"none"``;
    :func:`judgekit.stats.multiple.adjust_pvalues`), the family being every gain of the table (every model x
    condition x setting against its baseline) with a p-value."""
    from judgekit.stats.multiple import adjust_pvalues, check_correction

    method = check_correction(method)
    adj = adjust_pvalues([g.p_value for g in gains], method)
    size = int(sum(a == a for a in adj))
    return [g.model_copy(update={"p_adjusted": float(a), "correction": method, "family_size": size})
            for g, a in zip(gains, adj, strict=True)]


def export(store: str | Path, out: str | Path) -> int:
    """Write every stored call of ``store`` to ``out`` (.jsonl, .csv or .parquet), as ``judgekit export`` does;
    the store is opened read-only (a missing file or one that is not a judgekit store is refused and left
    unchanged). Returns the number of calls written."""
    from judgekit.io.dataio import write_records
    from judgekit.judging.store import Store

    with Store(Path(store), readonly=True) as st:
        rows = list(st.iter_calls())
    write_records(Path(out), rows)
    return len(rows)


def validate_local(judge: str = "local/default", *, local_mode: str | None = None,
                   calibration: str | Path | None = None, articles: int | None = None,
                   questions: int | None = None, summeval: str | Path | None = None, nq: str | Path | None = None,
                   threads: int | None = None, json: str | Path | None = None,
                   progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Measure a local judge's agreement with people on the shipped dev sets, as ``judgekit validate`` does
    (SummEval: summary-level Spearman/Kendall, i.e. within each article, averaged; NQ-open: AUC and kappa of
    the pass rule ``overall >= 3`` against the human label, beside GPT-4's kappa). Returns the figures of
    :func:`judgekit.local.validate.validate` (``json`` also writes them)."""
    from judgekit.judging.backends.local import local_name
    from judgekit.local.validate import validate

    spec = local_spec(judge, local_mode, calibration, threads)
    summeval_path, nq_path, json_path = as_path(summeval), as_path(nq), as_path(json)
    for path, flag in ((summeval_path, "--summeval"), (nq_path, "--nq")):
        if path is not None and not path.is_file():
            raise JudgekitError("file not found", path=path, field=flag)
    if json_path is not None and json_path.suffix.lower() != ".json":
        raise JudgekitError("expected a .json file", path=json_path, field="--json")
    check_writable(json_path, "--json")
    fig = validate(local_name(spec.model), str(spec.extra["local_mode"]), articles=articles, questions=questions,
                   calibration=str(calibration) if calibration else None, summeval_path=summeval_path,
                   nq_path=nq_path, progress=progress)
    if json_path is not None:
        from judgekit.io.dataio import atomic_write_json

        atomic_write_json(json_path, fig)
    return fig
