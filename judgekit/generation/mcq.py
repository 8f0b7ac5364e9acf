"""Multiple-choice (MCQ) scoring: answer-letter extraction and MMAD-style accuracy tables.

Used for the MMAD benchmark and for RobustMAD's multiple-choice questions. No judge is involved: the letter a
model chose is read from its raw answer by :func:`extract_choice` and compared with the item's ``reference``.

Conventions (differences from the original MMAD script are deliberate and listed here):

- Option 1 is letter A, option 2 is B, ... (at most 26 options). ``reference`` is the correct letter; it is
  compared after ``.strip().upper()``.
- An answer from which no letter can be read, or from which two different letters could be read, is
  *unparsable*: it counts as WRONG (it stays in the denominator) and the unparsable count and rate are reported
  beside the accuracy. MMAD drops such rows from the denominator instead, and its extraction never fails
  (it falls back to the most similar option text); judgekit never guesses.
- Accuracy is computed per model x condition x dataset x subtask (``category``); records whose ``dataset`` is
  None form one dataset, and so do records whose ``category`` is None.
- Anomaly discrimination (any subtask in ``balanced_subtasks``, matched case-insensitively ignoring spaces,
  ``_`` and ``-``; by default "Anomaly Discrimination" and "Anomaly Detection", the name MMAD's data files use)
  also gets balanced accuracy: the mean, over the true-answer classes present (the text of the correct option,
  e.g. "Yes" for anomalous and "No" for normal images), of the accuracy within each class.
- The MMAD figure (``score``) of a subtask is its balanced accuracy for anomaly discrimination and its plain
  accuracy otherwise. A dataset's mean is the unweighted mean of the scores of its subtasks; the MMAD average
  is the unweighted mean of the dataset means. The micro accuracy pools every question of the group.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

from judgekit.generation.mcq_settings import SettingGain, gain_markdown, print_gains, setting_suffix, show_settings
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Response

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

DEFAULT_BALANCED_SUBTASKS: tuple[str, ...] = ("anomaly discrimination", "anomaly detection")
"""Subtasks scored with balanced accuracy by default. MMAD's paper calls the subtask "anomaly discrimination";
its data files and scoring script call the same question type "Anomaly Detection"."""

MMAD_SUBTASK_ALIASES: dict[str, str] = {"object structure": "Object Analysis", "object details": "Object Analysis"}
"""MMAD's scoring script merges these two question types of its data files into "Object Analysis" (its seventh
subtask). Pass as ``subtask_aliases`` to :func:`score_mcq` when the categories come straight from MMAD's files."""

# The order in which MMAD's tables list its seven subtasks; other subtasks follow in order of appearance.
_MMAD_SUBTASK_ORDER = ("anomalydiscrimination", "anomalydetection", "defectclassification", "defectlocalization",
                       "defectdescription", "defectanalysis", "objectclassification", "objectanalysis")


# ----------------------------------------------------------------------------------------------------------------
# Answer extraction
# ----------------------------------------------------------------------------------------------------------------

_THINK_RE = re.compile(r"<think>.*?(?:</think>|\Z)", re.S | re.I)
_ANSWER_TAG_RE = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_DECOR_RE = re.compile(r"[*_`~#]")  # Markdown emphasis, code and heading marks
_WHOLE_RE = re.compile(r"[\W_]*([A-Za-z])[\W_]*")
# An upper-case letter standing alone: not inside a word, no apostrophe ("I'm", "O'Brien"), no hyphenated
# compound ("C-shaped", "X-ray").
_CANDIDATE_RE = re.compile(r"(?<![\w'’-])[A-Z](?![\w'’])(?!-\w)")
_FOLLOWING_WORD_RE = re.compile(r"[ \t]+([^\W\d_][\w'’-]*)")
# Words after which a letter followed by a word is still a letter ("B is correct", "A or B").
_FOLLOWERS = frozenset({"is", "are", "was", "seems", "appears", "would", "should", "must", "fits", "matches", "because",
                        "or", "and", "nor", "vs", "versus"})
_I_FOLLOWERS = frozenset({"is", "or", "and", "nor", "vs", "versus"})  # "I would ..." is the pronoun
_MARKER_TAIL = r"""[\s:=>\-–—]*(?:(?:option|choice)\b[ \t]*)?[(\[{"'“‘]*"""
_STRONG_MARKER_RE = re.compile(
    r"""(?:
          \banswers?\b(?:[ \t]+(?:is|would[ \t]+be|should[ \t]+be|will[ \t]+be|must[ \t]+be))?
        | \bI(?:[ \t]+would|[ \t]+will|['’]d)?[ \t]+(?:choose|pick|select|go[ \t]+with)
        | \\boxed[ \t]*\{
        )""" + _MARKER_TAIL,
    re.I | re.X)
_WEAK_MARKER_RE = re.compile(
    r"\b(?:option|choice)s?\b(?:[ \t]+(?:is|would[ \t]+be|should[ \t]+be|will[ \t]+be|must[ \t]+be))?" + _MARKER_TAIL,
    re.I)
_STATEMENT_RE = re.compile(
    r"[)\]}]*[ \t]*(?:is|was|seems|would[ \t]+be)[ \t]+(?:the[ \t]+)?(?:correct|right|best|answer|most[ \t]+likely)\b",
    re.I)
_HEDGE_RE = re.compile(
    r"[)\]}]*[ \t]*(?:,|/|&|\bor\b|\band\b|\bnor\b|\bvs\b\.?)[ \t]*(?:(?:option|choice)[ \t]*)?[(\[]*", re.I)
_NEGATION_RE = re.compile(
    r"(?:\bnot|n['’]t|\bnever|\bneither|\bnor|\bexcept|\bexcluding)[ \t]+(?:(?:option|choice)[ \t]*)?[(\[]*\Z",
    re.I)
_LEADING_LOWER_RE = re.compile(r"[\W_]*?([a-z])[.):\]](?:\s|\Z)")
_LOWER_END_RE = re.compile(r"[)\]}]|[\"'”’]*[ \t]*(?:\Z|\n|[^\w\s])")


def _norm(text: str) -> str:
    """Case- and punctuation-insensitive form: casefolded words separated by single spaces."""
    return " ".join(re.sub(r"[\W_]+", " ", text.casefold()).split())


def _prepare(text: str) -> str:
    t = _THINK_RE.sub(" ", text)
    tags = _ANSWER_TAG_RE.findall(t)
    if tags:
        t = "\n".join(tags)
    return _DECOR_RE.sub(" ", t).strip()


def _letter_tokens(t: str, first_words: Sequence[str]) -> list[tuple[int, str]]:
    """Positions of upper-case letters that stand alone as letters (see :func:`extract_choice`)."""
    out: list[tuple[int, str]] = []
    for m in _CANDIDATE_RE.finditer(t):
        letter = m.group()
        follow = _FOLLOWING_WORD_RE.match(t, m.end())
        if follow:
            word = _norm(follow.group(1))
            idx = ord(letter) - ord("A")
            first = first_words[idx] if idx < len(first_words) else ""
            if word.split(" ")[0] == first or word in (_I_FOLLOWERS if letter == "I" else _FOLLOWERS):
                pass  # "A Yes" (the option's own text), "B is correct", "A or B"
            elif letter in "AI" or follow.group(1)[0].islower():
                continue  # the article / the pronoun / "C shaped"
        out.append((m.start(), letter))
    return out


def _letter_at(t: str, pos: int, tokens: Mapping[int, str]) -> str | None:
    """The letter at ``pos`` if one stands there: an upper-case token, or a lower-case letter followed by
    punctuation or the end of the line ("answer: b.", but not "answer is a crack")."""
    if pos in tokens:
        return tokens[pos]
    if pos < len(t) and "a" <= t[pos] <= "z" and (pos + 1 == len(t) or not t[pos + 1].isalnum()) \
            and _LOWER_END_RE.match(t, pos + 1):
        return t[pos].upper()
    return None


def _hedged(t: str, pos: int, tokens: Mapping[int, str]) -> bool:
    """Whether the letter at ``pos`` is followed by "or B", "/B", ", B", "and B" (an alternative)."""
    m = _HEDGE_RE.match(t, pos + 1)
    return bool(m) and m.end() > pos + 1 and (_letter_at(t, m.end(), tokens) is not None
                                              or _CANDIDATE_RE.match(t, m.end()) is not None)


def _negated(t: str, start: int) -> bool:
    return bool(_NEGATION_RE.search(t[max(0, start - 40):start]))


def _match_option_text(t: str, options: Sequence[str]) -> str | None:
    text = f" {_norm(t)} "
    hits = [(i, o) for i, o in enumerate(_norm(o) for o in options) if o and f" {o} " in text]
    kept = [i for i, o in hits if not any(o != other and f" {o} " in f" {other} " for _, other in hits)]
    return LETTERS[kept[0]] if len(kept) == 1 else None


def extract_choice(text: str, options: Sequence[str]) -> str | None:
    """The option letter (upper case) that ``text`` chose among ``options``, or None: never a guess.

    Option 1 is letter A; only the first ``len(options)`` letters (at most 26) are valid. Rules, in order:

    0. ``<think>...</think>`` is dropped; when ``<answer>...</answer>`` tags are present only their content is
       read; Markdown marks (``* _ ` ~ #``) are ignored.
    1. Whole answer: the text is one letter, in either case, with only punctuation or brackets around it
       ("B", "b", "B.", "(B)", "[B]", "**B**"). A letter beyond the options gives None.
    2. Letters in running text are upper case only and must stand alone: not inside a word (the E of "THE"),
       not "I'm", "C-shaped". An upper-case letter followed by a word counts only if that word is the first word
       of the letter's own option ("A Yes"), or one of "is/are/was/seems/would/should/must/fits/matches/because"
       or "or/and/nor/vs"; otherwise "A"/"I" are the article/pronoun ("A crack is visible", "I think") and any
       letter followed by a lower-case word is prose ("C shaped").
    3. Explicit answer markers win, in two tiers. Strong: "Answer: B", "The (correct) answer is (C)",
       "answer is option C", "I choose / pick / select / go with / would choose C", "\\boxed{B}",
       "B is correct", "B is the (correct) answer". Weak: "Option D", "the correct choice is B", a letter that
       opens the answer ("B. Yes", "B) No", "(B) ...", "B: Yes", "B Yes", "b) ...") or opens a line followed by
       ".", ")" or ":". After a marker a lower-case letter counts when followed by a closing bracket,
       punctuation or the end ("answer: b.", "answer is (c)"), never before a word ("the answer is a crack").
       A marked letter followed by an alternative ("Answer: A or B", "A/B", "A, B") or preceded by a negation
       ("not option A") does not count. The strong tier decides when it counted any letter, else the weak tier:
       exactly one distinct letter is the answer (None when beyond the options); two or more different letters
       in the deciding tier give None ("Answer: A. Wait, the answer is B."; an echoed list "A. Yes / B. No").
    4. Without a marker: if exactly one distinct standalone letter appears (and no letter is negated: "not A",
       "isn't B", "neither ... nor"), it is the answer when valid; two different letters ("A or B",
       "Not A, it is B") or a letter beyond the options give None.
    5. Only when no letter appears at all: option text. The answer's words (case- and punctuation-insensitive)
       must contain exactly one option's text as whole words, after dropping a matching option whose text lies
       inside another matching option's text ("Scratch" inside "Scratch and dent"; "No" is not inside
       "Not sure" as a whole word). Otherwise None.
    """
    n = min(len(options), len(LETTERS))
    if n == 0 or not text or not text.strip():
        return None
    valid = LETTERS[:n]
    t = _prepare(text)
    whole = _WHOLE_RE.fullmatch(t)
    if whole:
        letter = whole.group(1).upper()
        return letter if letter in valid else None

    first_words = [(_norm(o).split(" ") or [""])[0] for o in options[:n]]
    token_list = _letter_tokens(t, first_words)
    tokens = dict(token_list)

    marked: tuple[set[str], set[str]] = (set(), set())  # strong, weak

    def mark(tier: int, pos: int, start: int, letter: str | None = None) -> None:
        letter = letter or _letter_at(t, pos, tokens)
        if letter is not None and not _hedged(t, pos, tokens) and not _negated(t, start):
            marked[tier].add(letter)

    for m in _STRONG_MARKER_RE.finditer(t):
        mark(0, m.end(), m.start())
    for m in _WEAK_MARKER_RE.finditer(t):
        mark(1, m.end(), m.start())
    for i, (pos, _letter) in enumerate(token_list):
        opens_text = i == 0 and not re.search(r"\w", t[:pos])
        opens_line = not re.search(r"\w", t[t.rfind("\n", 0, pos) + 1:pos]) and t[pos + 1:pos + 2] in (".", ")", ":")
        if _STATEMENT_RE.match(t, pos + 1):
            mark(0, pos, pos)
        elif opens_text or opens_line:
            mark(1, pos, pos)  # "B. Yes" opening the answer; "A. ...", "B. ..." at line starts
    lead = _LEADING_LOWER_RE.match(t)
    if lead:
        mark(1, lead.start(1), lead.start(1), lead.group(1).upper())

    for tier in marked:
        if tier:
            letter = next(iter(tier))
            return letter if len(tier) == 1 and letter in valid else None
    if token_list:
        letters = {letter for _, letter in token_list}
        if len(letters) != 1 or any(_negated(t, pos) for pos, _ in token_list):
            return None
        letter = next(iter(letters))
        return letter if letter in valid else None
    return _match_option_text(t, options[:n])


# ----------------------------------------------------------------------------------------------------------------
# Scoring
# ----------------------------------------------------------------------------------------------------------------


class ClassAccuracy(BaseModel):
    """Accuracy within one true-answer class (the text of the correct option) of a balanced subtask."""

    label: str
    n: int
    correct: int
    accuracy: float


class SubtaskScore(BaseModel):
    """One dataset x subtask cell. Fractions are in [0, 1].

    ``score`` is the figure that enters the MMAD averages: ``balanced_accuracy`` when ``balanced`` is True,
    ``accuracy`` otherwise. Unparsable answers are wrong (counted in ``n``, not in ``correct``)."""

    dataset: str | None
    subtask: str | None
    n: int
    correct: int
    accuracy: float
    unparsable: int
    unparsable_rate: float
    balanced: bool = False
    balanced_accuracy: float | None = None
    classes: list[ClassAccuracy] = Field(default_factory=list)
    score: float


class DatasetScore(BaseModel):
    """One dataset of a group: ``mean_score`` is the unweighted mean of its subtasks' ``score`` (MMAD's
    per-dataset "Average"); ``accuracy`` pools the dataset's questions."""

    dataset: str | None
    n: int
    correct: int
    accuracy: float
    unparsable: int
    unparsable_rate: float
    subtasks: int
    mean_score: float


class SubtaskAverage(BaseModel):
    """A subtask's ``score`` averaged over the datasets that have it (MMAD's "Average" row)."""

    subtask: str | None
    datasets: int
    score: float


class MCQGroup(BaseModel):
    """The results of one model under one condition and prompt setting."""

    model: str
    condition: str | None
    setting: str | None = None
    """The prompt setting of ``judgekit generate`` (``0-shot``, ``1-shot+``, ...; None when not recorded)."""
    n: int
    correct: int
    accuracy: float
    """Micro accuracy: all questions of the group pooled (plain accuracy, unparsable = wrong)."""
    unparsable: int
    unparsable_rate: float
    mmad_average: float
    """Mean over datasets of each dataset's mean over its subtasks (balanced accuracy for discrimination)."""
    datasets: list[DatasetScore]
    subtasks: list[SubtaskScore]
    subtask_averages: list[SubtaskAverage]


class MCQOutcome(BaseModel):
    """One scored answer, for export: ``chosen`` is None when the answer was unparsable (then wrong)."""

    id: str
    model: str
    condition: str | None
    dataset: str | None
    subtask: str | None
    reference: str
    chosen: str | None
    correct: bool
    setting: str | None = None


class MCQReport(BaseModel):
    """The result of :func:`score_mcq`: one :class:`MCQGroup` per model x condition, and every outcome."""

    groups: list[MCQGroup]
    outcomes: list[MCQOutcome]
    balanced_subtasks: list[str]
    setting_gains: list[SettingGain] = Field(default_factory=list)
    """Filled by :func:`judgekit.api.mcq` when the answers come in several prompt settings."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (fractions in [0, 1]; None where a figure does not apply)."""
        return self.model_dump(mode="json")

    def group(self, model: str, condition: str | None = None, setting: str | None = None) -> MCQGroup:
        """The group of ``model`` under ``condition`` (and ``setting`` when given); KeyError when there is none."""
        for g in self.groups:
            if g.model == model and g.condition == condition and (setting is None or g.setting == setting):
                return g
        raise KeyError((model, condition, setting))



def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.casefold())


@dataclass
class _Cell:
    n: int = 0
    correct: int = 0
    unparsable: int = 0
    classes: dict[str, list[Any]] = field(default_factory=dict)  # key -> [label, n, correct]


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals)


def _subtask_rank(subtask: str | None, seen: list[str | None]) -> tuple[int, int]:
    k = _key(subtask) if subtask is not None else ""
    if k in _MMAD_SUBTASK_ORDER:
        return (0, _MMAD_SUBTASK_ORDER.index(k))
    return (1, seen.index(subtask))


def score_mcq(responses: Sequence[Response], *,
              balanced_subtasks: Sequence[str] = DEFAULT_BALANCED_SUBTASKS,
              subtask_aliases: Mapping[str, str] | None = None) -> MCQReport:
    """Score multiple-choice answers, grouped by model and condition (see the module docstring).

    For each model x condition x dataset x subtask: n, correct, accuracy, unparsable count and rate; for the
    ``balanced_subtasks`` also the per-class accuracies and balanced accuracy. Per group: the micro accuracy and
    the MMAD average (mean over datasets of the per-dataset mean over subtasks, where an anomaly-discrimination
    subtask contributes its balanced accuracy, as in MMAD's scoring script and published tables).

    Differences from MMAD's script, on purpose: unparsable answers count as wrong (MMAD drops them); a
    dataset's mean covers the subtasks it has (MMAD's table puts 0 in a cell with no questions and averages
    it in); balanced accuracy averages the classes present (MMAD puts 0 for a class with no questions).

    ``subtask_aliases`` maps a category (matched case-insensitively, ignoring spaces, ``_`` and ``-``) to the
    subtask it is scored under, e.g. :data:`MMAD_SUBTASK_ALIASES`. Conditions are listed with None and
    "clean" first, then in order of appearance; models, datasets and other subtasks in order of appearance.

    Raises JudgekitError for an empty input, a record without options (not a multiple-choice item), a
    reference that is not one of the option letters, and a repeated (id, model, condition).
    """
    if not responses:
        raise JudgekitError("no responses to score: the multiple-choice input is empty")
    balanced_keys = {_key(s) for s in balanced_subtasks}
    aliases = {_key(k): v for k, v in (subtask_aliases or {}).items()}

    cells: dict[tuple[str, str | None, str | None], dict[tuple[str | None, str | None], _Cell]] = {}
    outcomes: list[MCQOutcome] = []
    seen_uid: set[tuple[str, str, str, str | None]] = set()
    datasets_seen: list[str | None] = []
    subtasks_seen: list[str | None] = []
    for r in responses:
        where = f"response '{r.id}' (model '{r.model}', condition '{r.condition or '-'}')"
        if not r.options:
            raise JudgekitError(f"{where} has no options: it is not a multiple-choice item", field="options")
        ref = r.reference.strip().upper()
        valid = LETTERS[:min(len(r.options), len(LETTERS))]
        if len(ref) != 1 or ref not in valid:
            raise JudgekitError(f"{where}: reference {r.reference!r} is not one of the option letters {valid[0]}-"
                                f"{valid[-1]}", field="reference")
        setting = r.setting
        if (*r.uid, setting) in seen_uid:
            raise JudgekitError(f"{where} appears more than once" + (f" in setting {setting}" if setting else ""),
                                field="id")
        seen_uid.add((*r.uid, setting))

        category = r.category.strip() if r.category is not None else None
        subtask = aliases.get(_key(category), category) if category is not None else None
        if r.dataset not in datasets_seen:
            datasets_seen.append(r.dataset)
        if subtask not in subtasks_seen:
            subtasks_seen.append(subtask)

        chosen = extract_choice(r.response, r.options)
        ok = chosen == ref
        outcomes.append(MCQOutcome(id=r.id, model=r.model, condition=r.condition, dataset=r.dataset,
                                   subtask=subtask, reference=ref, chosen=chosen, correct=ok, setting=setting))
        cell = cells.setdefault((r.model, r.condition, setting), {}).setdefault((r.dataset, subtask), _Cell())
        cell.n += 1
        cell.correct += ok
        cell.unparsable += chosen is None
        label = r.options[LETTERS.index(ref)].strip()
        cls = cell.classes.setdefault(_norm(label), [label, 0, 0])
        cls[1] += 1
        cls[2] += ok

    models: list[str] = []
    conditions: list[str | None] = []
    for model, condition, _ in cells:
        if model not in models:
            models.append(model)
        if condition not in conditions:
            conditions.append(condition)
    conditions.sort(key=lambda c: 0 if c is None else 1 if c.casefold() == "clean" else 2)  # stable
    settings = sorted(dict.fromkeys(k[2] for k in cells), key=lambda s: 0 if s in (None, "0-shot") else 1)

    groups: list[MCQGroup] = []
    for model in models:
        for condition in conditions:
            for setting in settings:
                group_cells = cells.get((model, condition, setting))
                if group_cells is not None:
                    group = _group(model, condition, group_cells, balanced_keys, datasets_seen, subtasks_seen)
                    groups.append(group.model_copy(update={"setting": setting}))
    return MCQReport(groups=groups, outcomes=outcomes, balanced_subtasks=list(balanced_subtasks))


def _group(model: str, condition: str | None, cells: dict[tuple[str | None, str | None], _Cell],
           balanced_keys: set[str], datasets_seen: list[str | None],
           subtasks_seen: list[str | None]) -> MCQGroup:
    order = sorted(cells, key=lambda k: (datasets_seen.index(k[0]), _subtask_rank(k[1], subtasks_seen)))
    subtasks: list[SubtaskScore] = []
    for dataset, subtask in order:
        c = cells[(dataset, subtask)]
        accuracy = c.correct / c.n
        balanced = subtask is not None and _key(subtask) in balanced_keys
        classes = [ClassAccuracy(label=label, n=n, correct=k, accuracy=k / n)
                   for label, n, k in c.classes.values()] if balanced else []
        bal = _mean(x.accuracy for x in classes) if balanced else None
        subtasks.append(SubtaskScore(dataset=dataset, subtask=subtask, n=c.n, correct=c.correct, accuracy=accuracy,
                                     unparsable=c.unparsable, unparsable_rate=c.unparsable / c.n, balanced=balanced,
                                     balanced_accuracy=bal, classes=classes,
                                     score=bal if bal is not None else accuracy))
    datasets: list[DatasetScore] = []
    for dataset in [d for d in datasets_seen if any(s.dataset == d for s in subtasks)]:
        mine = [s for s in subtasks if s.dataset == dataset]
        n = sum(s.n for s in mine)
        correct = sum(s.correct for s in mine)
        unparsable = sum(s.unparsable for s in mine)
        datasets.append(DatasetScore(dataset=dataset, n=n, correct=correct, accuracy=correct / n,
                                     unparsable=unparsable, unparsable_rate=unparsable / n, subtasks=len(mine),
                                     mean_score=_mean(s.score for s in mine)))
    averages: list[SubtaskAverage] = []
    for subtask in sorted({s.subtask for s in subtasks}, key=lambda x: _subtask_rank(x, subtasks_seen)):
        mine = [s for s in subtasks if s.subtask == subtask]
        averages.append(SubtaskAverage(subtask=subtask, datasets=len(mine), score=_mean(s.score for s in mine)))
    n = sum(s.n for s in subtasks)
    correct = sum(s.correct for s in subtasks)
    unparsable = sum(s.unparsable for s in subtasks)
    return MCQGroup(model=model, condition=condition, n=n, correct=correct, accuracy=correct / n,
                    unparsable=unparsable, unparsable_rate=unparsable / n,
                    mmad_average=_mean(d.mean_score for d in datasets), datasets=datasets, subtasks=subtasks,
                    subtask_averages=averages)


# ----------------------------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------------------------

_NOTE = ("Accuracy in %; unparsable answers count as wrong. Anomaly discrimination is scored by balanced accuracy "
         "(mean of the per-class accuracies over the true answers); a dataset's mean is the mean over its subtasks, "
         "the MMAD average the mean over datasets; micro pools every question.")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _name(x: str | None) -> str:
    return "-" if x is None else x


def _balanced_cell(s: SubtaskScore) -> str:
    if not s.balanced:
        return "-"
    parts = ", ".join(f"{c.label} {_pct(c.accuracy)}" for c in s.classes)
    return f"{_pct(s.balanced_accuracy)} ({parts})"


def _unparsable_cell(k: int, rate: float) -> str:
    return f"{k} ({_pct(rate)} %)"


def _overview_rows(report: MCQReport) -> list[list[str]]:
    setting = show_settings(g.setting for g in report.groups)
    return [[g.model, _name(g.condition), *([_name(g.setting)] if setting else []), str(g.n), _pct(g.accuracy),
             _pct(g.mmad_average), _unparsable_cell(g.unparsable, g.unparsable_rate)] for g in report.groups]


_OVERVIEW_HEAD = ["model", "condition", "n", "micro accuracy", "MMAD average", "unparsable"]
_DETAIL_HEAD = ["dataset", "subtask", "n", "correct", "accuracy", "balanced accuracy (per class)", "MMAD score",
                "unparsable"]


def _overview_head(report: MCQReport) -> list[str]:
    return [*_OVERVIEW_HEAD[:2], "setting", *_OVERVIEW_HEAD[2:]] if show_settings(g.setting for g in report.groups) \
        else _OVERVIEW_HEAD


def _detail_rows(g: MCQGroup) -> list[tuple[list[str], bool]]:
    """Rows of a group's detail table; the flag marks summary rows."""
    rows: list[tuple[list[str], bool]] = []
    for d in g.datasets:
        for s in (s for s in g.subtasks if s.dataset == d.dataset):
            rows.append(([_name(d.dataset), _name(s.subtask), str(s.n), str(s.correct), _pct(s.accuracy),
                          _balanced_cell(s), _pct(s.score), _unparsable_cell(s.unparsable, s.unparsable_rate)],
                         False))
        rows.append(([_name(d.dataset), f"mean of {d.subtasks} subtask(s)", str(d.n), str(d.correct), _pct(d.accuracy),
                      "", _pct(d.mean_score), _unparsable_cell(d.unparsable, d.unparsable_rate)], True))
    rows.append((["all", f"MMAD average over {len(g.datasets)} dataset(s)", str(g.n), str(g.correct),
                  _pct(g.accuracy), "", _pct(g.mmad_average), _unparsable_cell(g.unparsable, g.unparsable_rate)],
                 True))
    return rows


def _title(g: MCQGroup) -> str:
    return f"{g.model}, condition {_name(g.condition)}{setting_suffix(g.setting)}"


def print_mcq_report(report: MCQReport, console: Console | None = None) -> None:
    """Print an overview (one row per model x condition) and a detail table per model x condition."""
    console = console or Console()
    overview = Table(title="Multiple-choice accuracy (%)", title_justify="left")
    head = _overview_head(report)
    for i, col in enumerate(head):
        overview.add_column(col, justify="left" if i < len(head) - 4 else "right")
    for row in _overview_rows(report):
        overview.add_row(*row)
    console.print(overview)
    console.print(_NOTE, style="dim")
    print_gains(report.setting_gains, console)
    for g in report.groups:
        table = Table(title=_title(g), title_justify="left")
        for i, col in enumerate(_DETAIL_HEAD):
            table.add_column(col, justify="left" if i < 2 else "right")
        for cells, summary in _detail_rows(g):
            table.add_row(*cells, style="bold" if summary else None, end_section=summary)
        console.print(table)


def _md_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    def esc(x: str) -> str:
        return x.replace("|", "\\|")

    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return lines


def mcq_markdown(report: MCQReport) -> str:
    """The report as Markdown: the overview table, then one detail table per model x condition."""
    out = ["## Multiple-choice accuracy", "", _NOTE, ""]
    out += _md_table(_overview_head(report), _overview_rows(report))
    out += gain_markdown(report.setting_gains, _md_table)
    for g in report.groups:
        out += ["", f"### {_title(g)}", ""]
        rows = [[f"**{c}**" if summary and c else c for c in cells] for cells, summary in _detail_rows(g)]
        out += _md_table(_DETAIL_HEAD, rows)
    return "\n".join(out) + "\n"
