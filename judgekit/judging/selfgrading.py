"""Self-grading: a judge that is also one of the models under test grades its own answers.

Conventions:

- **Matching** (:func:`same_model`): two names are the same model when, after normalising, their full strings or
  their last path parts are equal. Normalising lower-cases and strips the text, drops a prompt-setting suffix
  ``" [SETTING]"`` (``"qwen [1-shot]"`` is ``qwen``, see :func:`judgekit.io.records.entry_name`), an api_base
  suffix ``"@http(s)://..."``, and a ``.gguf`` file ending. The last path part is what follows the last ``/``, so
  the judge ``openai/gpt-4o-mini`` matches the models ``gpt-4o-mini``, ``openai/gpt-4o-mini`` and
  ``azure/GPT-4o-mini``, and the local judge ``local/models/qwen2.5-0.5b.gguf`` matches ``qwen2.5-0.5b``.
- **Declared aliases** (``--self-alias JUDGE=MODEL``, repeatable; the API's ``self_aliases``): the judge JUDGE *is*
  the model MODEL although the names differ (a local server's name, a fine-tune), each side matched as above.
- **Policy** (``self_grading``): ``"warn"`` (the default) warns once per judge and model pair, naming both, and
  the run goes on; ``"refuse"`` (``--no-self-grading``) raises :class:`JudgekitError` before anything is written
  or any call made; ``"allow"`` says nothing. Whatever the policy, the results record it.
- **Record**: :attr:`Judgment.self_grading <judgekit.io.records.Judgment>` lists the judges that graded their own
  model in that judgment (the judge itself, or the panel members that are the model); None otherwise (and in
  results written before judgekit recorded it).
- **Without the self-grader** (:func:`panel_without`): a panel judgment recomputed from its other members as the
  runner reduces a panel (:meth:`judgekit.judging.runner.Runner._panel`: ``panel_reduce`` over the scored
  members, the rubric's overall, pass rule and fact checks); the smaller panel's quorum is the recorded quorum,
  at most a majority of the remaining judges; below it the judgment is unscored.
"""

from __future__ import annotations

import re
import statistics
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from judgekit.io.errors import JudgekitError

if TYPE_CHECKING:
    from judgekit.io.records import Judgment
    from judgekit.judging.rubric import Rubric

Policy = Literal["warn", "refuse", "allow"]
POLICIES: tuple[str, ...] = ("warn", "refuse", "allow")
Aliases = Sequence[tuple[str, str]]

_SETTING_SUFFIX = re.compile(r"\s+\[[^\[\]]*\]$")
_API_BASE_SUFFIX = re.compile(r"@https?://.*$")


def normalise(name: str) -> str:
    """``name`` lower-cased and stripped, without a ``" [SETTING]"`` suffix, an ``@http(s)://...`` api_base suffix
    or a ``.gguf`` ending."""
    text = _API_BASE_SUFFIX.sub("", name.strip().lower()).strip()
    text = _SETTING_SUFFIX.sub("", text).strip()
    return text[: -len(".gguf")] if text.endswith(".gguf") else text


def _forms(name: str) -> tuple[str, str]:
    full = normalise(name)
    return full, full.rstrip("/").rsplit("/", 1)[-1]


def same_model(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name the same model: equal normalised strings, or equal last path parts (see the
    module's conventions). Empty names never match."""
    fa, ta = _forms(a)
    fb, tb = _forms(b)
    return bool(fa and fb) and (fa == fb or (bool(ta) and ta == tb))


def parse_aliases(values: str | Sequence[str] | Mapping[str, str | Sequence[str]] | None) -> list[tuple[str, str]]:
    """Declared aliases as (judge, model) pairs, from ``"JUDGE=MODEL"`` texts (split at the first ``=``) or a
    mapping judge -> model(s). An empty side or a missing ``=`` is a :class:`JudgekitError` on ``--self-alias``."""
    if values is None:
        return []
    if isinstance(values, Mapping):
        pairs = [(str(j), str(m)) for j, ms in values.items() for m in ([ms] if isinstance(ms, str) else ms)]
    else:
        pairs = []
        for text in [values] if isinstance(values, str) else values:
            judge, eq, model = str(text).partition("=")
            if not eq:
                raise JudgekitError(f"expected JUDGE=MODEL, got {text!r}", field="--self-alias")
            pairs.append((judge, model))
    for judge, model in pairs:
        if not judge.strip() or not model.strip():
            raise JudgekitError(f"expected JUDGE=MODEL with both names given, got {judge}={model}",
                                field="--self-alias")
    return [(j.strip(), m.strip()) for j, m in pairs]


def is_self_grading(judge: str, model: str, aliases: Aliases = ()) -> bool:
    """True when ``judge`` is the model under test ``model``: the same model by name, or by a declared alias."""
    return same_model(judge, model) or any(same_model(judge, aj) and same_model(model, am) for aj, am in aliases)


def self_grading_pairs(judges: Iterable[str], models: Iterable[str], aliases: Aliases = ()) -> list[tuple[str, str]]:
    """The (judge, model) pairs where the judge is the model under test, judges in the order given, models in
    the order of their first appearance."""
    model_list = list(dict.fromkeys(models))
    return [(j, m) for j in dict.fromkeys(judges) for m in model_list if is_self_grading(j, m, aliases)]


def check_self_grading(judges: Sequence[str], models: Iterable[str], aliases: Aliases, policy: str,
                       warning: type[Warning] = UserWarning) -> list[tuple[str, str]]:
    """Apply ``policy`` to the judges and the models under test before a run; the self-grading pairs.
    ``"refuse"`` raises a :class:`JudgekitError` on ``--judge`` naming the judge and the model; ``"warn"`` warns
    (``warning``) once per pair, naming both; ``"allow"`` is silent."""
    if policy not in POLICIES:
        raise JudgekitError(f"expected one of {', '.join(POLICIES)}, got {policy!r}", field="self_grading")
    pairs = self_grading_pairs(judges, models, aliases)
    if pairs and policy == "refuse":
        judge, model = pairs[0]
        more = f" (and {len(pairs) - 1} more pair(s))" if len(pairs) > 1 else ""
        raise JudgekitError(f"the judge {judge} is also a model under test ({model}) and would grade its own "
                            f"answers{more}; refused by --no-self-grading: drop that judge or those answers",
                            field="--judge")
    if policy == "warn":
        for judge, model in pairs:
            warnings.warn(f"self-grading: the judge {judge} is also the model under test {model}; it grades its own "
                          "answers (recorded as self_grading in the results; 'judgekit report' shows the model with "
                          "and without that judge when a panel has others; --no-self-grading refuses)",
                          warning, stacklevel=3)
    return pairs


def mark_self_grading(judgments: Iterable[Judgment], aliases: Aliases = ()) -> int:
    """Record on each judgment (and panel member) the judges that are its model under test
    (``Judgment.self_grading``); the number of judgments marked. One decision per (judge, model) pair."""
    cache: dict[tuple[str, str], bool] = {}

    def hit(judge: str, model: str) -> bool:
        key = (judge, model)
        if key not in cache:
            cache[key] = is_self_grading(judge, model, aliases)
        return cache[key]

    marked = 0
    for j in judgments:
        if j.panel:
            found = []
            for m in j.panel:
                if hit(m.judge, m.model):
                    m.self_grading = [m.judge]
                    found.append(m.judge)
            j.self_grading = found or None
        elif hit(j.judge, j.model):
            j.self_grading = [j.judge]
        marked += j.self_grading is not None
    return marked


def recorded_pairs(judgments: Iterable[Judgment]) -> list[dict[str, Any]]:
    """The self-grading the judgments record: ``{"judge", "model", "judgments"}`` per pair (``judge`` the panel
    member or the judge; ``judgments`` how many judgments of ``model`` it is in), in order of appearance."""
    counts: dict[tuple[str, str], int] = {}
    for j in judgments:
        for judge in j.self_grading or ():
            counts[(judge, j.model)] = counts.get((judge, j.model), 0) + 1
    return [{"judge": judge, "model": model, "judgments": n} for (judge, model), n in counts.items()]


def _reduce(values: Sequence[float], how: str) -> float:
    """As the runner reduces (``mean``, ``median``, ``mode``: ties to the lower median of the tied values)."""
    if how == "median":
        return float(statistics.median(values))
    if how == "mode":
        return float(statistics.median_low(statistics.multimode(values)))
    return float(statistics.fmean(values))


def panel_without(j: Judgment, leave_out: Iterable[str], rubric: Rubric | None) -> tuple[float | None, bool | None]:
    """``(overall, passed)`` of the panel judgment ``j`` recomputed without the members ``leave_out``; ``(None,
    None)`` when fewer than the quorum of the others scored (see the module's conventions). With no ``rubric``
    the overall is ``panel_reduce`` of the other members' overall scores and ``passed`` is None (the pass rule
    is not known)."""
    out = set(leave_out)
    rest = [m for m in j.panel if m.judge not in out]
    scored = [m for m in rest if m.status == "scored"]
    how = j.panel_reduce or "mean"
    majority = len(rest) // 2 + 1
    quorum = min(j.panel_quorum or majority, majority)
    if not rest or len(scored) < quorum:
        return None, None
    if rubric is None:
        return round(_reduce([m.overall for m in scored if m.overall is not None], how), 6), None
    keys = list(rubric.criterion_names)
    scores = {k: _reduce([m.scores[k] for m in scored], how) for k in keys}
    if rubric.overall.method == "judge":
        scores["overall"] = _reduce([m.overall if m.overall_judge is None else m.overall_judge for m in scored
                                     if m.overall is not None], how)
    checks = dict(j.checks) or None
    overall = rubric.compute_overall(scores, checks)
    values = {**{k: v for k, v in scores.items() if k != "overall"}, "overall": overall}
    return round(overall, 6), rubric.passed(values, checks)


__all__ = ["POLICIES", "check_self_grading", "is_self_grading", "mark_self_grading", "normalise", "panel_without",
           "parse_aliases", "recorded_pairs", "same_model", "self_grading_pairs"]
