"""The local judge: score one response on a rubric with a local model, in one of two modes.

``likelihood`` (the default; used by ``local/default``)
    Raw features from :mod:`judgekit.local.features` (log-probabilities from the model and reference
    signals). Each criterion is given a *role* from its name (see :func:`role_of`) and the role's formula
    from the calibration file: a weighted sum of standardised features
    ``raw = sum_k w_k * (f_k - mean_k) / std_k`` followed by an isotonic (monotone, non-decreasing) map onto
    the rubric's scale, stored as breakpoints and linearly interpolated between them. The integer score is
    the calibrated value rounded half up and clipped to the scale. Weights, standardisation and breakpoints
    are fitted on the dev sets in shared/data (bench/validate_local.py fit) and shipped in
    ``calibration_default.json``; they are tuned on those dev sets, so the dev figures are optimistic.

``rate``
    G-Eval style: the rubric's own judge prompt (:func:`judgekit.prompt.build_messages`, images left out)
    in the model's chat template, followed by the opening of the JSON reply ``{``; for each criterion the
    suffix ``"name": `` is appended to the cached prefix and the score is the expected value of the
    next-token distribution over the scale's digits. The integer score is that expected value, rounded.

Both return the raw values beside the integer scores, and the seconds spent.
"""

from __future__ import annotations

import json
import math
import re
import time
from bisect import bisect_right
from functools import cache
from pathlib import Path
from typing import Any, Literal

from judgekit.local.features import FEATURE_VERSION, REFERENCE_TOKENS, extract
from judgekit.local.models import LocalLM, expected_value, get_lm, release_memory
from judgekit.local.signals import Embedder, get_embedder, split_references
from judgekit.records import Response
from judgekit.rubric import Rubric

Mode = Literal["likelihood", "rate"]
CALIBRATION_PATH = Path(__file__).with_name("calibration_default.json")

_ROLE_PATTERNS = [
    ("accuracy", re.compile(r"accura|correct|factual|consisten|faithful|truth")),
    ("coverage", re.compile(r"comprehens|complete|coverage|recall|thorough")),
    ("relevance", re.compile(r"relevan|on_topic|focus")),
    ("style", re.compile(r"style|clarity|clear|fluen|coheren|readab|concise")),
]


def role_of(criterion: str) -> str:
    """The calibrated formula a criterion uses, from its name: ``accuracy`` (accura/correct/factual/...),
    ``coverage`` (comprehens/complete/...), ``relevance``, ``style`` (style/clarity/fluen/coheren/...), and
    ``overall`` for ``overall`` and any other name."""
    for role, pat in _ROLE_PATTERNS:
        if pat.search(criterion):
            return role
    return "overall"


@cache
def load_calibration(path: str | None = None) -> dict[str, Any]:
    data = json.loads(Path(path or CALIBRATION_PATH).read_text())
    if str(data.get("feature_version")) != FEATURE_VERSION:
        raise ValueError(f"calibration {path or CALIBRATION_PATH} was fitted on feature version "
                         f"{data.get('feature_version')}, the code computes version {FEATURE_VERSION}")
    return data


def interpolate(x: float, xs: list[float], ys: list[float]) -> float:
    """Piecewise-linear interpolation through the breakpoints, constant outside them."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    j = bisect_right(xs, x)
    x0, x1, y0, y1 = xs[j - 1], xs[j], ys[j - 1], ys[j]
    return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def combine(features: dict[str, float], formula: dict[str, Any], stats: dict[str, list[float]]) -> float:
    """The raw (uncalibrated) criterion value: weighted sum of standardised features."""
    total = 0.0
    for name, w in formula["weights"].items():
        mean, std = stats[name]
        total += w * (features.get(name, mean) - mean) / (std or 1.0)
    return total


def calibrated(features: dict[str, float], role: str, lo: int, hi: int,
               calibration: dict[str, Any]) -> tuple[float, float]:
    """(raw value, calibrated value on ``lo..hi``) of one role. The calibration's breakpoints are on a 1-5
    scale; another scale is mapped linearly."""
    formula = calibration["roles"][role]
    raw = combine(features, formula, calibration["standardize"])
    value = interpolate(raw, formula["isotonic"]["x"], formula["isotonic"]["y"])
    value = lo + (value - 1.0) * (hi - lo) / 4.0
    return raw, value


def to_int(value: float, lo: int, hi: int) -> int:
    """Round half up and clip to the scale."""
    return int(min(hi, max(lo, math.floor(value + 0.5))))


class LocalJudge:
    """Scores responses on a rubric with a local model; one instance per (model, mode)."""

    def __init__(self, model: str = "default", *, mode: Mode = "likelihood", threads: int | None = None,
                 device: str = "auto", calibration: str | None = None, lm: LocalLM | None = None,
                 embedder: Embedder | None = None) -> None:
        self.mode = mode
        self.lm = lm or get_lm(model, threads=threads, device=device)
        self.embedder = embedder
        self.calibration_path = calibration
        if mode == "likelihood":
            self.calibration = load_calibration(calibration)
            if self.embedder is None:
                self.embedder = get_embedder()

    def score(self, response: Response, rubric: Rubric) -> dict[str, Any]:
        """``{"scores": {key: int}, "values": {key: float}, "raw": {...}, "mode": ..., "seconds": s}`` with a
        key for every criterion and ``overall`` when the rubric's overall is judge-given."""
        t0 = time.perf_counter()
        out = self._rate(response, rubric) if self.mode == "rate" else self._likelihood(response, rubric)
        out["mode"] = self.mode
        out["model"] = self.lm.name
        out["seconds"] = round(time.perf_counter() - t0, 4)
        return out

    def score_many(self, responses: list[Response], rubric: Rubric) -> list[dict[str, Any]]:
        """Score several responses at once. In ``likelihood`` mode the answers to the same item (same question
        and reference) share one computation of the question + reference prefix, and the model runs batched,
        so a file with several models' answers per item costs much less per judgment than one at a time."""
        if self.mode == "rate":
            return [self.score(r, rubric) for r in responses]
        t0 = time.perf_counter()
        items = [(r.question, r.reference, r.response) for r in responses]
        refs = [split_references(r.reference, r.meta) for r in responses]
        feats = extract(items, self.lm, self.embedder, refs=refs)
        release_memory()
        per = (time.perf_counter() - t0) / max(1, len(responses))
        out = []
        for f in feats:
            res = self._from_features(f, rubric)
            res.update(mode=self.mode, model=self.lm.name, seconds=round(per, 4))
            out.append(res)
        return out

    def _likelihood(self, response: Response, rubric: Rubric) -> dict[str, Any]:
        refs = split_references(response.reference, response.meta)
        feats = extract([(response.question, response.reference, response.response)], self.lm, self.embedder,
                        refs=[refs])[0]
        return self._from_features(feats, rubric)

    def _from_features(self, feats: dict[str, float], rubric: Rubric) -> dict[str, Any]:
        scores: dict[str, int] = {}
        values: dict[str, float] = {}
        raw_roles: dict[str, float] = {}
        for key in rubric.reply_keys:
            sc = rubric.scale_of(key)
            role = role_of(key)
            raw, value = calibrated(feats, role, sc.min, sc.max, self.calibration)
            raw_roles[key] = round(raw, 6)
            values[key] = round(value, 4)
            scores[key] = to_int(value, sc.min, sc.max)
        feats.pop("seconds", None)
        return {"scores": scores, "values": values,
                "raw": {"features": {k: round(v, 6) for k, v in feats.items()}, "combined": raw_roles}}

    def _clip(self, text: str, max_tokens: int) -> str:
        ids = self.lm.encode(text)
        return text if len(ids) <= max_tokens else str(self.lm.tokenizer.decode(ids[:max_tokens])) + " ..."

    def _rate(self, response: Response, rubric: Rubric) -> dict[str, Any]:
        from judgekit.prompt import build_messages

        # long references (e.g. a source article) are clipped so that the rubric part of the prompt survives
        clipped = response.model_copy(update={
            "reference": self._clip(response.reference, REFERENCE_TOKENS),
            "response": self._clip(response.response, self.lm.max_continuation_tokens * 2)})
        messages = build_messages(rubric, clipped, images=False)
        tok = self.lm.tokenizer
        if getattr(tok, "chat_template", None):
            prefix = str(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        else:
            prefix = "\n\n".join(str(m["content"]) for m in messages) + "\n"
        prefix += "{"
        keys = rubric.reply_keys
        scores: dict[str, int] = {}
        values: dict[str, float] = {}
        dists: dict[str, dict[str, float]] = {}
        by_scale: dict[tuple[int, int], list[str]] = {}
        for key in keys:  # criteria may have different scales; one call per scale
            sc = rubric.scale_of(key)
            if sc.min < 0 or sc.max > 9:
                raise ValueError(f"rate mode needs single-digit scales; {key} is {sc.min}-{sc.max}")
            by_scale.setdefault((sc.min, sc.max), []).append(key)
        for (lo, hi), group in by_scale.items():
            res = self.lm.digit_distribution(prefix, [f'"{k}": ' for k in group], list(range(lo, hi + 1)))
            for key, dist in zip(group, res, strict=True):
                ev = expected_value(dist)
                values[key] = round(ev, 4)
                scores[key] = to_int(ev, lo, hi)
                dists[key] = {str(d): round(p, 6) for d, p in dist.items() if d >= 0}
                dists[key]["mass"] = round(dist[-1], 6)
        return {"scores": scores, "values": values, "raw": {"distributions": dists,
                                                             "prompt_tokens": len(self.lm.encode(prefix))}}


def score(response: Response, rubric: Rubric, *, mode: Mode = "likelihood", model: str = "default",
          threads: int | None = None) -> dict[str, Any]:
    """Score one response with a process-wide shared :class:`LocalJudge` (see :meth:`LocalJudge.score`)."""
    return _judge(model, mode, threads).score(response, rubric)


@cache
def _judge(model: str, mode: Mode, threads: int | None) -> LocalJudge:
    return LocalJudge(model, mode=mode, threads=threads)
