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
    The calibration's optional ``contradiction`` gate then holds the values of the roles it names under
    ``lo + (hi - lo) * (1 - evidence)``, the evidence coming from the answer's polarity mismatch with its
    reference, a place on the other side and a different kind of defect (:func:`contradiction_cap`); it never
    raises a value.

``rate``
    G-Eval style: the rubric's own judge prompt (:func:`judgekit.judging.prompt.build_messages`, images left out)
    in the model's chat template, followed by the opening of the JSON reply ``{``; for each criterion the
    suffix ``"name": `` is appended to the cached prefix and the score is the expected value of the
    next-token distribution over the scale's digits. The integer score is that expected value, rounded.

Both return the raw values beside the integer scores, and the seconds spent.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
from bisect import bisect_right
from functools import cache
from pathlib import Path
from typing import Any, Literal

from judgekit.io.errors import JudgekitError
from judgekit.io.records import Response
from judgekit.judging.rubric import Rubric
from judgekit.local.features import FEATURE_VERSION, REFERENCE_TOKENS, extract
from judgekit.local.models import LocalLM, expected_value, get_lm, release_memory
from judgekit.local.signals import Embedder, get_embedder, split_references

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


ROLES = ("accuracy", "coverage", "relevance", "style", "overall")
_SHAPE = ("a calibration is a JSON object like judgekit/local/calibration_default.json (written by "
          "bench/validate_local.py fit)")


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def check_calibration(data: Any, path: str | Path) -> None:
    """Raise :class:`JudgekitError` (naming ``path`` and the offending field) unless ``data`` has the shape
    :func:`calibrated` needs: ``feature_version`` equal to the code's, ``standardize`` mapping feature names
    to ``[mean, std]``, ``roles`` with a formula for each of :data:`ROLES` (``weights``: feature -> number, every
    feature standardised; ``isotonic``: ``x`` non-decreasing and ``y``, lists of numbers of one length)."""
    def bad(message: str, field: str | None = None) -> JudgekitError:
        return JudgekitError(message, path=path, field=field)

    if not isinstance(data, dict):
        raise bad(f"expected a JSON object, found {type(data).__name__}; {_SHAPE}")
    missing = [k for k in ("feature_version", "standardize", "roles") if k not in data]
    if missing:
        raise bad(f"missing {', '.join(missing)}; {_SHAPE}")
    if str(data["feature_version"]) != FEATURE_VERSION:
        raise bad(f"fitted on feature version {data['feature_version']}, the code computes version "
                  f"{FEATURE_VERSION}: refit it (bench/validate_local.py features, then fit)", "feature_version")
    stats = data["standardize"]
    if not isinstance(stats, dict) or not stats:
        raise bad("expected an object of feature -> [mean, std]", "standardize")
    for name, ms in stats.items():
        if not (isinstance(ms, list) and len(ms) == 2 and all(_finite(v) for v in ms)):
            raise bad("expected [mean, std], two numbers", f"standardize.{name}")
    roles = data["roles"]
    if not isinstance(roles, dict):
        raise bad("expected an object of role -> formula", "roles")
    for role in ROLES:
        formula = roles.get(role)
        where = f"roles.{role}"
        if not isinstance(formula, dict):
            raise bad("missing (every role needs a formula)" if formula is None else "expected an object", where)
        weights = formula.get("weights")
        if not isinstance(weights, dict) or not weights:
            raise bad("expected an object of feature -> weight", f"{where}.weights")
        for name, w in weights.items():
            if not _finite(w):
                raise bad("expected a number", f"{where}.weights.{name}")
            if name not in stats:
                raise bad(f"feature {name!r} has no entry in standardize", f"{where}.weights.{name}")
        iso = formula.get("isotonic")
        xs, ys = (iso.get("x"), iso.get("y")) if isinstance(iso, dict) else (None, None)
        if not (isinstance(xs, list) and isinstance(ys, list) and xs and len(xs) == len(ys)
                and all(_finite(v) for v in xs + ys)):
            raise bad("expected x and y, two lists of numbers of one length", f"{where}.isotonic")
        if any(b < a for a, b in itertools.pairwise(xs)):
            raise bad("x must be non-decreasing", f"{where}.isotonic.x")
    gate = data.get("contradiction")
    if gate is not None:
        if not isinstance(gate, dict) or not isinstance(gate.get("terms"), dict) or not gate["terms"]:
            raise bad("expected an object with terms (feature -> {scale, offset}) and roles", "contradiction")
        if not (isinstance(gate.get("roles"), list) and all(r in ROLES for r in gate["roles"])):
            raise bad(f"expected a list of roles among {', '.join(ROLES)}", "contradiction.roles")
        for name, term in gate["terms"].items():
            if not (isinstance(term, dict) and _finite(term.get("scale")) and _finite(term.get("offset"))):
                raise bad("expected {scale, offset}, two numbers", f"contradiction.terms.{name}")
        if "max_reference_words" in gate and not _finite(gate["max_reference_words"]):
            raise bad("expected a number", "contradiction.max_reference_words")


def read_calibration(path: str | Path | None = None) -> dict[str, Any]:
    """Read and check a calibration file (the shipped one when ``path`` is None); a :class:`JudgekitError`
    naming the file, and the line or field, when it cannot be read or is not a calibration."""
    p = Path(path) if path else CALIBRATION_PATH
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise JudgekitError(f"cannot read the calibration file: {exc.strerror or exc}", path=p) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise JudgekitError(f"not a calibration file: not UTF-8 text; {_SHAPE}", path=p) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JudgekitError(f"not a calibration file: invalid JSON ({exc.msg}, column {exc.colno}); {_SHAPE}",
                            path=p, line=exc.lineno) from None
    check_calibration(data, p)
    return data  # type: ignore[no-any-return]


@cache
def load_calibration(path: str | None = None) -> dict[str, Any]:
    """:func:`read_calibration`, cached per path."""
    return read_calibration(path)


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
    scale; another scale is mapped linearly. The calibrated value is then held under the contradiction gate's
    ceiling (:func:`contradiction_cap`) when the calibration has one for the role."""
    formula = calibration["roles"][role]
    raw = combine(features, formula, calibration["standardize"])
    value = interpolate(raw, formula["isotonic"]["x"], formula["isotonic"]["y"])
    value = lo + (value - 1.0) * (hi - lo) / 4.0
    cap = contradiction_cap(features, role, lo, hi, calibration)
    return raw, value if cap is None else min(value, cap)


def contradiction_evidence(features: dict[str, float], gate: dict[str, Any]) -> float:
    """0..1, how strongly the features say the answer contradicts its reference: the sum over the gate's
    ``terms`` of ``scale * max(0, offset - feature)`` (features are oriented larger = better, so evidence
    grows as a feature falls below its offset), clipped to 0..1. 0 when the gate has ``max_reference_words``
    and the reference (its longest gold answer, feature ``ref_words``) is longer: the polarity check compares
    an answer with a reference *answer*; against a whole source document (a news article) the sentence it
    aligns with is often another statement, and capping there lost SummEval consistency agreement."""
    limit = gate.get("max_reference_words")
    if limit is not None and features.get("ref_words", 0.0) > limit:
        return 0.0
    total = 0.0
    for name, term in gate["terms"].items():
        total += term["scale"] * max(0.0, term["offset"] - features.get(name, term["offset"]))
    return min(1.0, max(0.0, total))


def contradiction_cap(features: dict[str, float], role: str, lo: int, hi: int,
                      calibration: dict[str, Any]) -> float | None:
    """The ceiling the calibration's ``contradiction`` gate puts on ``role``'s value: ``lo + (hi - lo) * (1 -
    evidence)`` (see :func:`contradiction_evidence`), so that full evidence of a contradiction forces the lowest
    score and none leaves the value alone; None when the calibration has no gate or it does not cover ``role``."""
    gate = calibration.get("contradiction")
    if not gate or role not in gate["roles"]:
        return None
    return lo + (hi - lo) * (1.0 - contradiction_evidence(features, gate))


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
        raw: dict[str, Any] = {"features": {k: round(v, 6) for k, v in feats.items()}, "combined": raw_roles}
        gate = self.calibration.get("contradiction")
        if gate:
            raw["contradiction"] = round(contradiction_evidence(feats, gate), 6)
        return {"scores": scores, "values": values, "raw": raw}

    def _clip(self, text: str, max_tokens: int) -> str:
        ids = self.lm.encode(text)
        return text if len(ids) <= max_tokens else str(self.lm.tokenizer.decode(ids[:max_tokens])) + " ..."

    def _rate(self, response: Response, rubric: Rubric) -> dict[str, Any]:
        from judgekit.judging.prompt import build_messages

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
