"""The design of a human study: which judged answers people rate, and who rates what (``judgekit study create``
and ``judgekit study create --add-raters``).

Conventions:

- **Sampling**: only scored judgments are sampled. Strata are (model, category, condition, judge score bin); the
  bins cut the rubric's overall scale at every integer (1-5: [1, 2), [2, 3), [3, 4), [4, 5]), so low and high
  verdicts are both rated. ``size`` answers are allocated to the strata in proportion to their sizes by the
  largest-remainder method (ties broken by the seed) and drawn at random within each stratum; with ``size`` at or
  above the number of scored answers, every one is taken.
- **Assignment** (every item to ``overlap`` of the raters): item by item, the raters with the fewest items so far
  are taken first (all of them when they are ``overlap`` or fewer), so the loads of any two raters differ by at
  most 1; within that freedom the raters are picked greedily to cover pairs of raters that share no item yet
  (then the pairs that share the fewest). The best of several seeded restarts is kept (fewest pairs without a
  shared item, then the narrowest spread of pair counts). Pair coverage is a goal, not a promise: a pair can only
  be covered when ``size * overlap * (overlap - 1) >= raters * (raters - 1)`` (each item covers
  ``overlap * (overlap - 1) / 2`` pairs), and even then some designs are impossible (4 raters, overlap 3,
  2 items); uncovered pairs are returned and reported.
- **Queues**: each rater's main items are shuffled (seeded); every gold answer goes to every rater (kind
  ``gold``), shuffled in; ``repeats`` of the rater's own main items come back later (kind ``repeat``), never right
  after their first showing (at least one item in between).
- **Blind**: model names, conditions and judge verdicts are kept in the ``items`` table only (for export); slots
  and item keys are random; images are copied to ``STUDY/images/<sha256><suffix>`` so no file name tells a
  condition or a model.
- **Links**: ``STUDY/links.csv`` (mode 0600) holds each rater's path ``/r/<token>`` and the admin's ``/a/<token>``;
  the database keeps only the tokens' hashes.
- **All or nothing**: every input is checked before anything is written; a new study is built in a temp folder
  beside ``STUDY`` and renamed into place; raters are added in one transaction.

The module is one piece: sampling, assignment, queues and the writing of a study share the design's invariants
(loads within 1, pair coverage, queue rules), and ``add_raters`` re-applies them to a study already written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import random
import re
import secrets
import shutil
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from human_study.store import Assignment, Item, StudyStore, new_key
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Judgment, Response, entry_name
from judgekit.judging.rubric import Rubric

#: The base URL printed in front of the link paths (replace it with the host and port the app is served at).
BASE_URL = "http://HOST:PORT"
LINKS_NAME = "links.csv"
IMAGES_DIR = "images"
#: Seeded restarts of the greedy assignment (the best one is kept).
RESTARTS = 24
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

Key = tuple[str, str, str]  # (id, model, condition)


@dataclass(frozen=True)
class Stratum:
    """One stratum of the sample: how many scored answers it holds and how many were drawn."""

    model: str
    category: str
    condition: str
    score_bin: str
    available: int
    sampled: int


@dataclass
class Design:
    """Who rates what: ``items[i]`` is rated by ``raters_of[i]``; figures of the balance."""

    raters: list[str]
    raters_of: list[list[str]]
    loads: dict[str, int]
    pair_counts: dict[tuple[str, str], int]

    @property
    def uncovered_pairs(self) -> list[tuple[str, str]]:
        """Pairs of raters who share no item (pairwise agreement is undefined for them)."""
        return sorted(p for p, n in self.pair_counts.items() if n == 0)


@dataclass(frozen=True)
class Link:
    """A secret link: ``role`` is ``rater`` or ``admin``; ``path`` is ``/r/<token>`` or ``/a/<token>``."""

    role: str
    rater: str
    path: str

    @property
    def url(self) -> str:
        return BASE_URL + self.path


@dataclass
class StudySummary:
    """What ``study create`` (or ``--add-raters``) did: the links to hand out and the design's figures."""

    folder: Path
    links: list[Link]
    strata: list[Stratum] = field(default_factory=list)
    main_items: int = 0
    gold_items: int = 0
    loads: dict[str, int] = field(default_factory=dict)  # main items per rater
    queue_lengths: dict[str, int] = field(default_factory=dict)  # main + repeats + gold per rater
    pair_min: int = 0
    pair_max: int = 0
    uncovered_pairs: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- sampling

def score_bin(overall: float, rubric: Rubric) -> str:
    """The judge score bin of ``overall`` on the rubric's overall scale: ``"1-2"`` is [1, 2), ..., the top bin
    ``"4-5"`` is [4, 5] (closed)."""
    sc = rubric.overall_scale
    i = min(max(math.floor(overall - sc.min), 0), sc.max - sc.min - 1)
    return f"{sc.min + i}-{sc.min + i + 1}"


def largest_remainder(sizes: Sequence[int], total: int, rng: random.Random) -> list[int]:
    """``total`` allocated in proportion to ``sizes`` (largest remainder; ties broken by ``rng``); each share is
    at most its size. ``total`` must not exceed ``sum(sizes)``."""
    n = sum(sizes)
    if n == 0 or total <= 0:
        return [0] * len(sizes)
    quotas = [total * s / n for s in sizes]
    out = [math.floor(q) for q in quotas]
    order = sorted(range(len(sizes)), key=lambda i: (-(quotas[i] - out[i]), rng.random()))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def sample_judgments(judgments: Sequence[Judgment], size: int, rubric: Rubric,
                     seed: int = 0) -> tuple[list[Judgment], list[Stratum]]:
    """Draw ``size`` scored judgments stratified by model, category, condition and judge score bin
    (proportional allocation, largest remainder, seeded; see the module's conventions). Returns the sample (in
    stratum order) and the strata."""
    rng = random.Random(seed)
    scored = sorted((j for j in judgments if j.status == "scored" and j.overall is not None),
                    key=lambda j: (j.id, j.model, j.condition or ""))
    groups: dict[tuple[str, str, str, str], list[Judgment]] = defaultdict(list)
    for j in scored:
        groups[(j.model, j.category or "", j.condition or "", score_bin(float(j.overall or 0), rubric))].append(j)
    names = sorted(groups)
    shares = largest_remainder([len(groups[s]) for s in names], min(size, len(scored)), rng)
    sample: list[Judgment] = []
    strata: list[Stratum] = []
    for s, k in zip(names, shares, strict=True):
        sample.extend(rng.sample(groups[s], k))
        strata.append(Stratum(*s, available=len(groups[s]), sampled=k))
    return sample, strata


# -------------------------------------------------------------------------------------------- assignment

def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def _assign_once(n_items: int, raters: Sequence[str], k: int, rng: random.Random) -> Design:
    loads = dict.fromkeys(raters, 0)
    pairs = {_pair(a, b): 0 for a, b in combinations(raters, 2)}
    open_count = dict.fromkeys(raters, len(raters) - 1)  # raters each one shares no item with yet
    out: list[list[str]] = []
    for _ in range(n_items):
        low = min(loads.values())
        forced = [r for r in raters if loads[r] == low]
        chosen: list[str] = []
        pool = forced
        if len(forced) <= k:
            chosen = list(forced)
            pool = [r for r in raters if r not in chosen]
        while len(chosen) < k:
            def score(r: str, chosen: list[str] = chosen) -> tuple[int, int, int, float]:
                counts = [pairs[_pair(r, c)] for c in chosen]
                return (-counts.count(0), sum(counts), -open_count[r], rng.random())

            chosen.append(min((r for r in pool if r not in chosen), key=score))
        for a, b in combinations(chosen, 2):
            if pairs[_pair(a, b)] == 0:
                open_count[a] -= 1
                open_count[b] -= 1
            pairs[_pair(a, b)] += 1
        for r in chosen:
            loads[r] += 1
        out.append(chosen)
    return Design(raters=list(raters), raters_of=out, loads=loads, pair_counts=pairs)


def assign(n_items: int, raters: Sequence[str], overlap: int, seed: int = 0) -> Design:
    """Every item to ``overlap`` raters, loads within 1 of each other, pairs of raters covered greedily (see the
    module's conventions); the best of :data:`RESTARTS` seeded runs."""
    if not 1 <= overlap <= len(raters):
        raise JudgekitError(f"must be between 1 and the number of raters ({len(raters)}), got {overlap}",
                            field="--overlap")
    rng = random.Random(seed)
    best: Design | None = None
    best_key: tuple[int, int, int] | None = None
    for _ in range(RESTARTS if len(raters) > overlap else 1):
        d = _assign_once(n_items, raters, overlap, random.Random(rng.random()))
        counts = list(d.pair_counts.values()) or [0]
        mean = sum(counts) / len(counts)
        key = (len(d.uncovered_pairs), max(counts) - min(counts), round(sum((c - mean) ** 2 for c in counts)))
        if best_key is None or key < best_key:
            best, best_key = d, key
        if key[0] == 0 and key[1] <= 1:
            break
    assert best is not None
    return best


def queue(main: Sequence[str], gold: Sequence[str], repeats: int, rng: random.Random) -> list[tuple[str, str]]:
    """One rater's queue as ``(item_key, kind)``: the main and gold items shuffled together, then ``repeats``
    of the main items shown again later, each at least two places after its first showing."""
    q = [(k, "main") for k in main] + [(k, "gold") for k in gold]
    rng.shuffle(q)
    eligible = [i for i, (_, kind) in enumerate(q) if kind == "main" and i <= len(q) - 2]
    if repeats > len(eligible):
        raise JudgekitError(f"{repeats} repeats need at least {repeats + 1} main items per rater", field="--repeats")
    # prefer items shown early, so the second showing comes well after the first
    chosen = sorted(rng.sample(eligible[: max(repeats, (len(eligible) + 1) // 2)], repeats))
    for item_key in [q[i][0] for i in chosen]:
        first = next(i for i, (k, kind) in enumerate(q) if k == item_key and kind == "main")
        q.insert(rng.randint(first + 2, len(q)), (item_key, "repeat"))
    return q


# ------------------------------------------------------------------------------------------------ inputs

def _check_names(names: Sequence[str], flag: str) -> None:
    for name in names:
        if not _NAME_RE.match(name):
            raise JudgekitError(f"rater name {name!r}: use 1-64 letters, digits, '_', '.' or '-' (starting with a "
                                "letter or digit)", field=flag)
        if name == "admin":
            raise JudgekitError("'admin' is reserved (the admin link)", field=flag)
    dup = [n for n, c in Counter(names).items() if c > 1]
    if dup:
        raise JudgekitError(f"rater {dup[0]!r} is named twice", field=flag)


def rater_names(n: int | None, names: str | Sequence[str] | None, *, start: int = 1,
                taken: Sequence[str] = ()) -> list[str]:
    """The raters' names: ``names`` (comma-separated text or a list; its length must equal ``n`` when both are
    given), else ``rater<start>``, ``rater<start+1>``, ... skipping ``taken``."""
    if names is not None:
        given = [s.strip() for s in names.split(",")] if isinstance(names, str) else [str(s) for s in names]
        if n is not None and len(given) != n:
            raise JudgekitError(f"{len(given)} names for {n} raters", field="--rater-names")
        _check_names(given, "--rater-names")
        clash = [g for g in given if g in taken]
        if clash:
            raise JudgekitError(f"rater {clash[0]!r} already exists", field="--rater-names")
        return given
    if n is None or n < 1:
        raise JudgekitError("give the number of raters (at least 1) or their names (--rater-names)", field="--raters")
    out: list[str] = []
    i = start
    while len(out) < n:
        if f"rater{i}" not in taken:
            out.append(f"rater{i}")
        i += 1
    return out


def _sole_judge(judgments: list[Judgment], judge: str | None, path: Path) -> list[Judgment]:
    judges = sorted({j.judge for j in judgments})
    if judge is not None:
        picked = [j for j in judgments if j.judge == judge]
        if not picked:
            raise JudgekitError(f"no judgments by {judge!r} in {path} (judges: {', '.join(judges)})", field="--judge")
        return picked
    if len(judges) > 1:
        raise JudgekitError(f"the results hold several judges ({', '.join(judges)}): pick one with --judge",
                            path=path, field="judge")
    return judgments


def read_gold(path: str | Path, rubric: Rubric) -> list[tuple[Response, dict[str, int]]]:
    """Gold answers: a responses-like file (JSONL, CSV, Parquet; ``model`` optional, default ``gold``) with
    ``scores``, an object of known integer scores per rating key (CSV: a JSON object, or ``scores.KEY``
    columns). Images are resolved relative to the file and checked. Errors name the file, line and field."""
    from pydantic import ValidationError

    from judgekit.io.dataio import iter_rows, row_error
    from judgekit.io.images import image_problem, resolve_image_path
    from judgekit.io.strictjson import JSONProblem, StrictJSON

    path = Path(path)
    base = path.resolve().parent
    keys = list(rubric.reply_keys)
    out: list[tuple[Response, dict[str, int]]] = []
    seen: dict[Key, str] = {}
    for where, row in iter_rows(path):
        row = dict(row)
        scores: Any = row.pop("scores", None)
        for col in [c for c in row if c.startswith("scores.")]:
            scores = scores if isinstance(scores, dict) else {}
            scores[col.partition(".")[2]] = row.pop(col)
        if isinstance(scores, str):
            try:
                scores = StrictJSON().loads(scores)
            except (json.JSONDecodeError, JSONProblem):
                raise row_error(path, where, "not a JSON object of scores", "scores") from None
        if not isinstance(scores, dict) or not scores:
            raise row_error(path, where, f"a gold answer needs its known scores (an object with some of "
                                         f"{', '.join(keys)})", "scores")
        checked: dict[str, int] = {}
        for k, v in scores.items():
            if k not in keys:
                raise row_error(path, where, f"not a rating key of the rubric ({', '.join(keys)})", f"scores.{k}")
            text = str(v).strip()
            if isinstance(v, bool) or not (isinstance(v, int) or text.lstrip("-").isdigit()):
                raise row_error(path, where, f"not an integer: {v!r}", f"scores.{k}")
            sc = rubric.scale_of(k)
            if not sc.min <= int(text) <= sc.max:
                raise row_error(path, where, f"{int(text)} is outside the scale {sc.min}-{sc.max}", f"scores.{k}")
            checked[k] = int(text)
        row.setdefault("model", "gold")
        for f in ("id", "question", "reference", "response"):
            if row.get(f) is None:
                raise row_error(path, where, "required field is missing", f)
        try:
            rec = Response.model_validate(row)
        except ValidationError as exc:
            err = exc.errors()[0]
            name = ".".join(str(p) for p in err["loc"]) or "record"
            msg = "unknown field (put free data under 'meta')" if err["type"] == "extra_forbidden" else err["msg"]
            raise row_error(path, where, msg, name) from None
        for f in ("images", "reference_images"):
            resolved = []
            for p in getattr(rec, f):
                full = resolve_image_path(base, p)
                problem = image_problem(full)
                if problem is not None:
                    raise row_error(path, where, f"{problem}: {p}", f)
                resolved.append(str(full))
            setattr(rec, f, resolved)
        if rec.uid in seen:
            raise row_error(path, where, f"duplicate gold answer: id={rec.id!r} model={rec.model!r} "
                                         f"condition={rec.condition!r} already given at {seen[rec.uid]}")
        seen[rec.uid] = where
        out.append((rec, checked))
    if not out:
        raise JudgekitError("no gold answers in file", path=path)
    return out


# ------------------------------------------------------------------------------------------------ writing

def _copy_images(paths: Sequence[str], folder: Path, done: dict[str, str]) -> tuple[str, ...]:
    """Copy images into ``folder/images/<sha256><suffix>``; return their paths relative to ``folder``."""
    out = []
    for p in paths:
        if p not in done:
            data = Path(p).read_bytes()
            name = hashlib.sha256(data).hexdigest() + Path(p).suffix.lower()
            target = folder / IMAGES_DIR / name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{name}.{secrets.token_hex(4)}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, target)
            done[p] = f"{IMAGES_DIR}/{name}"
        out.append(done[p])
    return tuple(out)


def _links_text(links: Sequence[Link]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["role", "rater", "path", "url"])
    for link in links:
        w.writerow([link.role, link.rater, link.path, link.url])
    return buf.getvalue()


def write_links(path: Path, links: Sequence[Link]) -> None:
    """Write ``links.csv`` atomically with mode 0600 (the tokens are secrets)."""
    tmp = path.with_name(f".{path.name}.pid{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(_links_text(links))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_links(path: Path) -> list[Link]:
    """The links of ``links.csv`` (empty when the file is gone)."""
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as fh:
        return [Link(role=r["role"], rater=r["rater"], path=r["path"]) for r in csv.DictReader(fh)]


def _assignments(rater: str, q: Sequence[tuple[str, str]], start: int = 0) -> list[Assignment]:
    return [Assignment(slot=new_key(), rater=rater, position=start + i, item_key=k, kind=kind)
            for i, (k, kind) in enumerate(q)]


# ------------------------------------------------------------------------------------------------ create

def create_study(results: str | Path, *, rubric: str | Path | Rubric, responses: str | Path, out: str | Path,
                 raters: int | None = None, overlap: int = 2, size: int = 100, repeats: int = 0,
                 gold: str | Path | None = None, seed: int = 0, rater_names_: str | Sequence[str] | None = None,
                 judge: str | None = None) -> StudySummary:
    """Create the study folder ``out`` (``study.sqlite``, ``images/``, ``links.csv``): ``size`` scored answers
    of the results file drawn stratified (model, category, condition, judge score bin), each given to ``overlap``
    of the raters in a balanced design, ``repeats`` of each rater's items shown twice, every gold answer shown to
    every rater. The question, reference, answer and images come from the ``responses`` file, matched on (id,
    model, condition). Every input is checked before anything is written; the folder is built beside ``out``
    and renamed into place (``out`` must not exist or be empty). See the module's conventions."""
    from judgekit.io.dataio import read_judgments, read_responses
    from judgekit.judging.rubric import load_rubric

    results, responses, out = Path(results), Path(responses), Path(out)
    rub = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
    for value, flag, lo in ((size, "--size", 1), (overlap, "--overlap", 1), (repeats, "--repeats", 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise JudgekitError(f"expected an integer of at least {lo}, got {value!r}", field=flag)
    names = rater_names(raters, rater_names_)
    if overlap > len(names):
        raise JudgekitError(f"{overlap} raters per item, but only {len(names)} raters", field="--overlap")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise JudgekitError("already exists and is not an empty folder (choose another --out, or add raters "
                            "with --add-raters)", path=out)
    judged = _sole_judge(read_judgments(results), judge, results)
    scored = [j for j in judged if j.status == "scored"]
    if not scored:
        raise JudgekitError("no scored judgments to sample", path=results)
    missing = sorted(set(rub.criterion_names) - set(scored[0].scores))
    if missing:
        raise JudgekitError(f"the results were not judged with this rubric: they have no score for "
                            f"{', '.join(missing)} (the rubric {rub.name!r} asks for {', '.join(rub.criterion_names)})",
                            field="--rubric")
    # the model as the judgments name it: "MODEL [SETTING]" for an answer of a prompt setting (entry_name), so
    # that the answers of several settings of one question stay apart and the ratings join the judgments
    by_key = {(r.id, entry_name(r.model, r.setting), r.condition or ""): r for r in read_responses(responses)}
    for j in scored:
        if (j.id, j.model, j.condition or "") not in by_key:
            raise JudgekitError(f"the judged answer id={j.id!r} model={j.model!r} condition={j.condition!r} of "
                                f"{results} is not in the responses file (matched on id, model, condition and the "
                                "prompt setting)", path=responses)
    gold_rows = read_gold(gold, rub) if gold is not None else []
    sample, strata = sample_judgments(scored, size, rub, seed)
    notes = []
    if size > len(scored):
        notes.append(f"--size {size} is more than the {len(scored)} scored answers: every one is rated")
    if len(scored) < len(judged):
        notes.append(f"{len(judged) - len(scored)} unscored judgment(s) left out")
    rng = random.Random(seed)
    order = list(range(len(sample)))
    rng.shuffle(order)  # the assignment must not follow the strata
    sample = [sample[i] for i in order]
    design = assign(len(sample), names, overlap, seed)
    min_load = min(design.loads.values())
    if repeats and repeats > min_load - 1:
        raise JudgekitError(f"{repeats} repeats need at least {repeats + 1} main items per rater (the smallest "
                            f"load is {min_load})", field="--repeats")
    if overlap == 1 and len(names) > 1:
        notes.append("--overlap 1: no two raters share an item, so agreement between people cannot be measured")
    elif design.uncovered_pairs:
        notes.append(f"{len(design.uncovered_pairs)} pair(s) of raters share no item (e.g. "
                     f"{' & '.join(design.uncovered_pairs[0])}): raise --size or --overlap to cover every pair")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        tmp.mkdir()
        copied: dict[str, str] = {}
        items: list[Item] = []
        for j in sample:
            r = by_key[(j.id, j.model, j.condition or "")]
            items.append(Item(item_key=new_key(), id=j.id, model=j.model, condition=j.condition,
                              category=j.category or r.category, judge=j.judge, question=r.question,
                              reference=r.reference, response=r.response,
                              images=_copy_images(r.images, tmp, copied),
                              reference_images=_copy_images(r.reference_images, tmp, copied),
                              judge_scores=dict(j.scores), judge_overall=j.overall, judge_passed=j.passed,
                              gold=None))
        gold_items = [Item(item_key=new_key(), id=g.id, model=g.model, condition=g.condition, category=g.category,
                           judge=None, question=g.question, reference=g.reference, response=g.response,
                           images=_copy_images(g.images, tmp, copied),
                           reference_images=_copy_images(g.reference_images, tmp, copied),
                           judge_scores=None, judge_overall=None, judge_passed=None, gold=scores)
                      for g, scores in gold_rows]
        plan: list[Assignment] = []
        queues: dict[str, int] = {}
        for rater in names:
            main = [items[i].item_key for i, who in enumerate(design.raters_of) if rater in who]
            q = queue(main, [g.item_key for g in gold_items], repeats, random.Random(f"{seed}:{rater}"))
            plan.extend(_assignments(rater, q))
            queues[rater] = len(q)
        with StudyStore(tmp, create=True) as store:
            store.set_rubric(rub)
            store.set_meta(design=json.dumps({"results": results.name, "responses": responses.name,
                                              "gold": Path(gold).name if gold is not None else None,
                                              "size": size, "overlap": overlap, "repeats": repeats, "seed": seed,
                                              "judge": sample[0].judge if sample else judge}))
            store.add_items([*items, *gold_items])
            tokens = store.enroll(names, plan)
            admin = store.new_admin_token()
        links = [Link("rater", r, f"/r/{tokens[r]}") for r in names] + [Link("admin", "admin", f"/a/{admin}")]
        write_links(tmp / LINKS_NAME, links)
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    counts = list(design.pair_counts.values()) or [0]
    return StudySummary(folder=out, links=links, strata=strata, main_items=len(items), gold_items=len(gold_items),
                        loads=dict(design.loads), queue_lengths=queues, pair_min=min(counts), pair_max=max(counts),
                        uncovered_pairs=design.uncovered_pairs, notes=notes)


# -------------------------------------------------------------------------------------------- add raters

def add_raters(study: str | Path, n: int | None = None, *, overlap: int | None = None,
               names: str | Sequence[str] | None = None, seed: int | None = None) -> StudySummary:
    """Add raters to an existing study and give them existing main items. Without ``overlap`` each new rater
    gets the mean load of the current raters (rounded); with ``overlap`` every main item is brought up to
    ``overlap`` raters, the new slots split evenly among the new raters (loads within 1). Items are picked
    greedily so that each new rater shares an item with every other rater (old and new) where the loads allow,
    then the items with the fewest raters. The study's repeats and gold answers are given to the new raters as
    to the first ones. Their links are appended to ``links.csv``; raters and assignments are added in one
    transaction."""
    folder = Path(study)
    with StudyStore(folder) as store:
        design = json.loads(store.meta("design") or "{}")
        old = store.raters()
        new = rater_names(n, names, start=len(old) + 1, taken=old)
        all_items = store.items()
        main_keys = [i.item_key for i in all_items if i.gold is None]
        gold_keys = [i.item_key for i in all_items if i.gold is not None]
        if not main_keys:
            raise JudgekitError("the study has no items to assign", path=folder)
        holders: dict[str, set[str]] = {k: set() for k in main_keys}
        for a in store.assignments():
            if a.kind == "main":
                holders[a.item_key].add(a.rater)
        if overlap is not None:
            top = max(len(h) for h in holders.values())
            if overlap < 1 or overlap > len(old) + len(new):
                raise JudgekitError(f"must be between 1 and the number of raters ({len(old) + len(new)})",
                                    field="--overlap")
            if overlap < top:
                raise JudgekitError(f"some items already have {top} raters: --overlap must be at least that",
                                    field="--overlap")
            total = sum(overlap - len(h) for h in holders.values())
            cap = overlap
        else:
            loads = Counter(r for h in holders.values() for r in h)
            mean = sum(loads.values()) / max(len(old), 1)
            total = min(round(mean), len(main_keys)) * len(new)
            cap = len(old) + len(new)
        per = [total // len(new) + (1 if i < total % len(new) else 0) for i in range(len(new))]
        if max(per) > len(main_keys):
            raise JudgekitError(f"a new rater would need {max(per)} items, but the study has {len(main_keys)}",
                                field="--overlap")
        repeats = int(design.get("repeats", 0))
        if repeats and min(per) - 1 < repeats:
            raise JudgekitError(f"the study shows {repeats} repeats per rater, but a new rater gets only {min(per)} "
                                "items", field="--add-raters")
        rng = random.Random(f"{design.get('seed', 0) if seed is None else seed}:add:{len(old)}")
        shares: dict[tuple[str, str], int] = Counter()
        for h in holders.values():
            for a, b in combinations(sorted(h), 2):
                shares[(a, b)] += 1
        got: dict[str, list[str]] = {r: [] for r in new}
        left = dict(zip(new, per, strict=True))
        everyone = [*old, *new]
        while any(left.values()):
            for r in new:
                if not left[r]:
                    continue

                def score(k: str, r: str = r) -> tuple[int, int, float]:
                    fresh = sum(shares[_pair(r, o)] == 0 for o in holders[k])
                    return (-fresh, len(holders[k]), rng.random())

                options = [k for k in main_keys if r not in holders[k] and len(holders[k]) < cap]
                if not options:
                    raise JudgekitError("no item left to give a new rater (raise --overlap)", field="--overlap")
                k = min(options, key=score)
                for o in holders[k]:
                    shares[_pair(r, o)] += 1
                holders[k].add(r)
                got[r].append(k)
                left[r] -= 1
        plan: list[Assignment] = []
        queues: dict[str, int] = {}
        for r in new:
            q = queue(got[r], gold_keys, repeats, random.Random(f"{design.get('seed', 0)}:{r}"))
            plan.extend(_assignments(r, q))
            queues[r] = len(q)
        tokens = store.enroll(new, plan)
    links = [Link("rater", r, f"/r/{tokens[r]}") for r in new]
    links_path = folder / LINKS_NAME
    write_links(links_path, [*read_links(links_path), *links])
    uncovered = sorted({_pair(a, b) for a in new for b in everyone if a != b and shares[_pair(a, b)] == 0})
    counts = [shares[_pair(a, b)] for a in new for b in everyone if a != b] or [0]
    notes = []
    if uncovered:
        notes.append(f"{len(uncovered)} pair(s) with a new rater share no item (e.g. {' & '.join(uncovered[0])})")
    return StudySummary(folder=folder, links=links, main_items=len(main_keys), gold_items=len(gold_keys),
                        loads={r: len(got[r]) for r in new}, queue_lengths=queues, pair_min=min(counts),
                        pair_max=max(counts), uncovered_pairs=uncovered, notes=notes)


__all__ = ["BASE_URL", "Design", "Link", "Stratum", "StudySummary", "add_raters", "assign", "create_study",
           "largest_remainder", "queue", "rater_names", "read_gold", "read_links", "sample_judgments", "score_bin",
           "write_links"]
