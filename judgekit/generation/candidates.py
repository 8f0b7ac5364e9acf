"""Candidate generation: ask the models under test every item and write a responses file for ``judgekit judge``.

Conventions:
- One user message per item: the reference image(s) first, then the query image(s) (RobustMAD's pair-wise
  questions and MMAD's 1-shot setting both say "the first image shows a normal reference"), each inline as a
  ``data:`` URL, then the question. A multiple-choice item (``options`` given) lists its options as
  ``A. text`` lines and asks for the letter alone.
- Presets (:data:`PRESETS`): ``plain`` (temperature 0, 512 new tokens, the question as it is) and
  ``robustmad`` (temperature 0.2, at most 100 new tokens, the instruction to answer in at most 50 words
  without bullets, parentheses or slashes). Multiple-choice items are always greedy (temperature 0) with at
  most 10 new tokens. ``temperature`` and ``max_tokens`` given explicitly override the open-ended settings.
- Every answer is stored (SQLite, the same store as judging) the moment it arrives, under a key made of the
  model's settings, the preset, the prompt version and the item's id, question, options, condition and image
  contents (not its reference answer: a corrected ground truth does not need new answers). A re-run reads the
  stored answers and asks only for the missing ones; ``kill -9`` loses at most the calls in flight. Runs that
  share a store claim each answer's key before asking (see :class:`judgekit.judging.claims.ClaimScheduler`): two
  runs on one items file divide the answers and never both pay for one.
- Transport faults are retried with back-off (as for judges); an item that still got no answer is left out of
  the responses file, recorded as a failure in the store, and the run exits incomplete (re-run to retry).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgekit.generation.shots import ShotPlan, Shots
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Item, Response
from judgekit.judging.backends import Backend, ChatRequest, ChatResult, JudgeSpec, PermanentError, TransientError
from judgekit.judging.claims import ClaimScheduler
from judgekit.judging.control import RunAborted, RunControl, _limiter, call_with_retries
from judgekit.judging.runner import RunOptions
from judgekit.judging.store import Store, StoredCall, _file_sha256, cloud_key_fields

GEN_PROMPT_VERSION = "gen-1"
ROBUSTMAD_INSTRUCTION = ("Answer in at most 50 words, in plain sentences: no bullet points, no parentheses and no "
                         "slashes.")
MCQ_INSTRUCTION = "Reply with the letter of the correct option only."


@dataclass(frozen=True)
class GenerationPreset:
    """How answers are asked for: open-ended sampling settings and instruction; multiple-choice settings."""

    name: str
    temperature: float
    max_tokens: int
    instruction: str | None
    mcq_temperature: float = 0.0
    mcq_max_tokens: int = 10


PRESETS: dict[str, GenerationPreset] = {
    "plain": GenerationPreset("plain", 0.0, 512, None),
    "robustmad": GenerationPreset("robustmad", 0.2, 100, ROBUSTMAD_INSTRUCTION),
}


def question_text(item: Item, preset: GenerationPreset) -> str:
    """The text part of the prompt: the question, then the lettered options and :data:`MCQ_INSTRUCTION` for a
    multiple-choice item, or the preset's instruction for an open one."""
    if item.options:
        lines = [f"{chr(ord('A') + i)}. {opt}" for i, opt in enumerate(item.options)]
        return "\n".join([item.question, *lines, MCQ_INSTRUCTION])
    return item.question if not preset.instruction else f"{item.question}\n{preset.instruction}"


def generation_messages(item: Item, preset: GenerationPreset, *, images: bool = True,
                        shots: Shots | None = None) -> list[dict[str, Any]]:
    """The chat messages for one item (see the module's conventions). ``shots`` (see
    :mod:`judgekit.generation.shots`): normal template images first, and their wording and domain knowledge
    before the question."""
    from judgekit.judging.prompt import cloud_view_parts, image_data_url

    text = question_text(item, preset)
    templates = list(shots.templates) if shots is not None and images else []
    if shots is not None and (templates or shots.knowledge):
        text = f"{Shots(tuple(templates), shots.knowledge).preface()}\n\n{text}"
    paths = [*templates, *item.reference_images, *item.images] if images else []
    clouds = item.point_clouds if images else []
    if not paths and not clouds:
        return [{"role": "user", "content": text}]
    parts: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": image_data_url(p)}} for p in paths]
    parts += cloud_view_parts(clouds)  # the rendered views of each point cloud, after the item's images
    parts.append({"type": "text", "text": text})
    return [{"role": "user", "content": parts}]


def settings_for(item: Item, spec: JudgeSpec, preset: GenerationPreset, *, temperature: float | None,
                 max_tokens: int | None) -> tuple[float, int]:
    """(temperature, max new tokens) for ``item`` under ``preset`` with the explicit overrides."""
    if item.options:
        return preset.mcq_temperature, preset.mcq_max_tokens
    return (preset.temperature if temperature is None else temperature,
            preset.max_tokens if max_tokens is None else max_tokens)


def generation_key(item: Item, spec: JudgeSpec, preset: GenerationPreset, *, temperature: float, max_tokens: int,
                   images: bool, shots: Shots | None = None) -> str:
    """The store key of one answer (see the module's conventions for what goes into it). Templates (by
    content) and knowledge text are part of it; the default setting (none) adds nothing, so its keys are the
    keys of runs made before settings existed."""
    doc = {"kind": "generate", "p": GEN_PROMPT_VERSION, "preset": preset.name,
           "instruction": preset.instruction if not item.options else MCQ_INSTRUCTION,
           "m": spec.model, "t": temperature, "mt": max_tokens, "seed": spec.seed, "extra": spec.extra,
           "id": item.id, "q": item.question, "opts": item.options, "cond": item.condition, "images": images,
           "img": [_file_sha256(p) for p in item.images] if images else [],
           "rimg": [_file_sha256(p) for p in item.reference_images] if images else []}
    if images:
        doc.update(cloud_key_fields(item.point_clouds))  # nothing for an item without point clouds
    if shots is not None and not shots.is_default:
        doc["shots"] = {"tmpl": [_file_sha256(p) for p in shots.templates] if images else [],
                        "know": shots.knowledge}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class GenerationReport:
    """What a run produced: one response per answered (item, model); the accounting of this run."""

    responses: list[Response]
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (item id, model, reason)
    calls_made: int = 0
    calls_cached: int = 0
    empty: int = 0
    truncated: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    wall_s: float = 0.0
    waited: str | None = None  # the note shown when this run waited for answers claimed by another run
    interrupted: bool = False  # Ctrl-C: some answers are missing; every finished one is stored


@dataclass
class _Unit:
    item: Item
    mi: int
    key: str
    temperature: float
    max_tokens: int
    reply: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    known: int = 0  # stored attempts of the key seen so far (for the claims, see claims.ClaimScheduler)
    shots: Shots | None = None  # the item's templates and knowledge (None: no setting given)


def make_generation_backend(spec: JudgeSpec, *, concurrency: int) -> Backend:
    """The backend for a model under test: ``local/NAME`` runs in-process (text only), anything else goes
    through the judges' backends (lean HTTP client or litellm)."""
    if spec.model.startswith("local/"):
        from judgekit.judging.backends.local import LocalChatBackend

        return LocalChatBackend(spec)
    from judgekit.judging.backends import make_backend

    return make_backend(spec, concurrency=concurrency)


def run_generation(items: Sequence[Item], models: Sequence[JudgeSpec], store: Store, *,
                   preset: GenerationPreset, options: RunOptions, temperature: float | None = None,
                   max_tokens: int | None = None, images: bool = True, names: Sequence[str] | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   notify: Callable[[str], None] | None = None, plan: ShotPlan | None = None) -> GenerationReport:
    """Ask every model in ``models`` every item; see the module's conventions. ``names`` (default: the model
    strings) are written as the responses' ``model``. ``plan``: the prompt setting (templates, knowledge; see
    :mod:`judgekit.generation.shots`), recorded in each response's ``meta.generation``.
    Returns the responses in item order, model by model.
    Runs sharing ``store`` divide the answers (claims, as for judging); ``notify`` gets the note when this run
    waits for answers another run has claimed."""
    names = list(names or [m.model for m in models])
    if len(names) != len(models) or len(set(names)) != len(names):
        raise JudgekitError("give each model a distinct name", field="--name")
    for spec in models:
        if spec.model.startswith("local/") and images:
            with_images = next((it for it in items if it.images or it.reference_images or it.point_clouds), None)
            if with_images is not None:
                raise JudgekitError(f"{spec.model} is text-only and item {with_images.id!r} has images; pass "
                                    "--no-images to ask without them", field="--model")
    report = GenerationReport(responses=[])
    stored = store.load()
    units: list[_Unit] = []
    chosen = [plan.for_item(it) if plan is not None else None for it in items]
    for mi, spec in enumerate(models):
        for item, shots in zip(items, chosen, strict=True):
            t, mt = settings_for(item, spec, preset, temperature=temperature, max_tokens=max_tokens)
            key = generation_key(item, spec, preset, temperature=t, max_tokens=mt, images=images, shots=shots)
            unit = _Unit(item, mi, key, t, mt, known=len(stored.get(key, [])), shots=shots)
            done = [c for c in stored.get(key, []) if c.status == "ok"]
            if done:
                unit.reply = done[-1].reply or ""
                unit.meta = json.loads(done[-1].rationale or "{}")
                report.calls_cached += 1
            units.append(unit)
    todo = [u for u in units if u.reply is None]
    total, finished = len(units), len(units) - len(todo)
    if progress:
        progress(finished, total)
    rpm, tpm = _limiter(options.requests_per_minute), _limiter(options.tokens_per_minute)
    start = time.perf_counter()
    control = RunControl()  # a setup mistake stops the run (exit 2); Ctrl-C as for judging

    async def main() -> None:
        backends = [make_generation_backend(s, concurrency=options.concurrency) for s in models]
        control.backends = backends

        async def ask(unit: _Unit) -> None:
            await _ask(unit, models[unit.mi], backends[unit.mi])

        def absorb(unit: _Unit, calls: list[StoredCall]) -> bool:
            """An answer another run stored since the plan: read from the store, not paid here."""
            unit.known = len(calls)
            done = [c for c in calls if c.status == "ok"]
            if not done:
                return False
            unit.reply = done[-1].reply or ""
            unit.meta = json.loads(done[-1].rationale or "{}")
            report.calls_cached += 1
            return True

        def settled(unit: _Unit) -> None:
            nonlocal finished
            finished += 1
            if progress:
                progress(finished, total)

        # Claims: each answer's key is claimed (in chunks) before it is asked for; see claims.ClaimScheduler.
        sched: ClaimScheduler[_Unit] = ClaimScheduler(
            store, chunk=options.concurrency, key=lambda u: u.key, known=lambda u: u.known, absorb=absorb,
            run=ask, settled=settled, notify=notify, what="answer", stopped=lambda: control.stopped)
        try:
            await sched.run(todo, options.concurrency)
        finally:
            report.waited = sched.note
            for b in backends:
                await b.aclose()

    async def _ask(unit: _Unit, spec: JudgeSpec, backend: Backend) -> None:
        req = ChatRequest(messages=generation_messages(unit.item, preset, images=images, shots=unit.shots),
                          temperature=unit.temperature, seed=spec.seed, max_tokens=unit.max_tokens, schema=None,
                          timeout=spec.timeout)
        pseudo = Response(**unit.item.model_dump(), model=spec.model, response="")
        if control.stopped:
            return
        try:
            res: ChatResult = await call_with_retries(backend, req, options, rpm=rpm, tpm=tpm,
                                                      health=control.health(backend), stopped=lambda: control.stopped)
        except (RunAborted, TransientError, PermanentError) as exc:
            text = control.failure(exc, spec)
            if text is None:
                return
            store.add_failure(key=unit.key, response=pseudo, judge=spec.model, reason=text)
            report.failures.append((unit.item.id, spec.model, text))
            return
        unit.reply = (res.text or "").strip()
        unit.meta = {"finish_reason": res.finish_reason, "tokens_out": res.tokens_out}
        report.calls_made += 1
        report.tokens_in += res.tokens_in
        report.tokens_out += res.tokens_out
        report.cost += res.cost or 0.0
        store.add_call(key=unit.key, attempt=0, status="ok", response=pseudo, judge=spec.model, sample=0,
                       reply=unit.reply, scores=None, rationale=json.dumps(unit.meta, sort_keys=True), reason=None,
                       tokens_in=res.tokens_in, tokens_out=res.tokens_out, cost=res.cost, latency_s=res.latency_s,
                       temperature=unit.temperature, seed=spec.seed, settings=spec.identity(), rubric="generate",
                       rubric_version=preset.name)

    try:
        control.run(main)
    finally:
        report.wall_s = time.perf_counter() - start
        report.interrupted = control.interrupted
    for unit in units:
        if unit.reply is None:
            continue
        spec = models[unit.mi]
        meta = dict(unit.item.meta)
        meta["generation"] = {"model": spec.model, "preset": preset.name, "temperature": unit.temperature,
                              "max_tokens": unit.max_tokens, "seed": spec.seed, "images": images,
                              "finish_reason": unit.meta.get("finish_reason")}
        if plan is not None:
            meta["generation"].update(plan.record(unit.shots or Shots()))
        report.empty += not unit.reply
        report.truncated += unit.meta.get("finish_reason") == "length"
        report.responses.append(Response(**{**unit.item.model_dump(), "meta": meta}, model=names[unit.mi],
                                         response=unit.reply))
    return report


def relative_paths(responses: Sequence[Response], out_path: Path) -> list[Response]:
    """Copies of ``responses`` whose image paths are relative to the folder of ``out_path`` (so the
    responses file can move together with its images)."""
    base = out_path.resolve().parent
    out = []
    for r in responses:
        gen = r.meta.get("generation")
        if isinstance(gen, dict) and gen.get("templates"):
            gen = {**gen, "templates": [os.path.relpath(p, base) for p in gen["templates"]]}
            r = r.model_copy(update={"meta": {**r.meta, "generation": gen}})
        out.append(r.model_copy(update={
            "images": [os.path.relpath(p, base) for p in r.images],
            "reference_images": [os.path.relpath(p, base) for p in r.reference_images],
            "point_clouds": [os.path.relpath(p, base) for p in r.point_clouds]}))
    return out
