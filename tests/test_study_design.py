"""The human study's design (issue 13): stratified sampling, the balanced assignment, queues with repeats and gold,
``create_study`` (blind, self-contained, secret links, all or nothing) and ``add_raters``."""

from __future__ import annotations

import csv
import json
import math
import random
import sqlite3
import stat
from collections import Counter
from itertools import combinations
from pathlib import Path

import pytest
from study_fixtures import BASE, JUDGE, RESPONSES, SAMPLE, make_gold, make_results, sample_responses

from human_study.design import (
    add_raters,
    assign,
    create_study,
    largest_remainder,
    queue,
    read_links,
    sample_judgments,
    score_bin,
)
from human_study.store import StudyStore, token_hash
from judgekit.io.dataio import read_judgments
from judgekit.io.errors import JudgekitError
from judgekit.judging.rubric import load_rubric

RUBRIC = load_rubric("robustmad")


def _create(tmp: Path, name: str = "study", **kw: object) -> object:
    results = tmp / "results.jsonl"
    if not results.exists():
        make_results(results)
    args: dict[str, object] = {"rubric": "robustmad", "responses": RESPONSES, "out": tmp / name, "raters": 4,
                               "overlap": 2, "size": 24, "seed": 1}
    args.update(kw)
    return create_study(results, **args)  # type: ignore[arg-type]


def _queues(folder: Path) -> dict[str, list[tuple[str, str, str, str]]]:
    with StudyStore(folder, readonly=True) as store:
        items = {i.item_key: i for i in store.items()}
        return {r: [(items[a.item_key].id, items[a.item_key].model, items[a.item_key].condition or "", a.kind)
                    for a in store.assignments(r)] for r in store.raters()}


# ------------------------------------------------------------------------------------------------- sampling

def test_largest_remainder_is_proportional_and_exact() -> None:
    rng = random.Random(0)
    for _ in range(300):
        sizes = [rng.randint(0, 30) for _ in range(rng.randint(1, 12))]
        total = rng.randint(0, sum(sizes))
        got = largest_remainder(sizes, total, random.Random(1))
        assert sum(got) == total
        for s, g in zip(sizes, got, strict=True):
            q = total * s / sum(sizes) if sum(sizes) else 0
            assert math.floor(q) <= g <= math.ceil(q) and g <= s
    assert largest_remainder([5, 4, 1], 6, random.Random(0)) == [3, 2, 1]  # quotas 3.0, 2.4, 0.6
    ties = {tuple(largest_remainder([6, 3, 1], 5, random.Random(s))) for s in range(20)}  # 3.0, 1.5, 0.5
    assert ties == {(3, 2, 0), (3, 1, 1)}  # the tie is broken by the seed
    assert sorted(largest_remainder([1, 1, 1], 2, random.Random(5))) == [0, 1, 1]


def test_score_bins_cut_the_overall_scale_at_integers() -> None:
    assert [score_bin(x, RUBRIC) for x in (1, 1.99, 2, 3.5, 4, 4.5, 5)] == ["1-2", "1-2", "2-3", "3-4", "4-5",
                                                                             "4-5", "4-5"]


def test_stratified_sample_counts_and_determinism(tmp_path: Path) -> None:
    judged = read_judgments(make_results(tmp_path / "r.jsonl", unscored=5))
    sample, strata = sample_judgments(judged, 30, RUBRIC, seed=4)
    assert len(sample) == 30 and all(j.status == "scored" for j in sample)
    assert sum(s.available for s in strata) == len(judged) - 5
    # each stratum got its largest-remainder share: floor or ceil of its proportional quota
    for s in strata:
        q = 30 * s.available / (len(judged) - 5)
        assert math.floor(q) <= s.sampled <= math.ceil(q)
        got = [j for j in sample if (j.model, j.category or "", j.condition or "", score_bin(j.overall or 0, RUBRIC))
               == (s.model, s.category, s.condition, s.score_bin)]
        assert len(got) == s.sampled
    # every model and both ends of the score range are in the sample
    assert {j.model for j in sample} == set(BASE)
    assert min(j.overall or 0 for j in sample) <= 2 and max(j.overall or 0 for j in sample) >= 4
    again, _ = sample_judgments(list(reversed(judged)), 30, RUBRIC, seed=4)
    assert [(j.id, j.model) for j in again] == [(j.id, j.model) for j in sample]  # file order does not matter
    other, _ = sample_judgments(judged, 30, RUBRIC, seed=5)
    assert {(j.id, j.model) for j in other} != {(j.id, j.model) for j in sample}
    everything, _ = sample_judgments(judged, 500, RUBRIC)
    assert len(everything) == len(judged) - 5


# ----------------------------------------------------------------------------------------------- assignment

def test_loads_within_one_and_every_pair_covered() -> None:
    """The guarantees: loads differ by at most 1 (always); every pair of raters shares an item when
    size * K * (K - 1) >= 2 * N * (N - 1) (checked here for every N <= 9 and 2 <= K <= N)."""
    for n in range(2, 10):
        raters = [f"r{i}" for i in range(n)]
        for k in range(2, n + 1):
            m0 = math.ceil(2 * n * (n - 1) / (k * (k - 1)))
            for m in (m0, m0 + 1, m0 + 3, 3 * m0 + 1):
                d = assign(m, raters, k, seed=m)
                assert all(len(set(who)) == k for who in d.raters_of)
                assert max(d.loads.values()) - min(d.loads.values()) <= 1
                assert sum(d.loads.values()) == m * k
                assert not d.uncovered_pairs, (n, k, m)
                # the counts agree with the design
                counted = Counter(tuple(sorted(p)) for who in d.raters_of for p in combinations(who, 2))
                assert all(counted[p] == c for p, c in d.pair_counts.items())
    # loads stay within 1 with too few items to cover the pairs, and the uncovered pairs are reported
    d = assign(2, ["a", "b", "c", "d"], 3)
    assert max(d.loads.values()) - min(d.loads.values()) <= 1 and len(d.uncovered_pairs) == 1
    d = assign(3, [f"r{i}" for i in range(10)], 2)
    assert sorted(d.loads.values()) == [0] * 4 + [1] * 6 and len(d.uncovered_pairs) == 45 - 3


def test_assignment_is_seeded_and_balances_pair_counts() -> None:
    raters = [f"r{i}" for i in range(6)]
    a, b = assign(60, raters, 3, seed=7), assign(60, raters, 3, seed=7)
    assert a.raters_of == b.raters_of
    assert assign(60, raters, 3, seed=8).raters_of != a.raters_of
    counts = list(a.pair_counts.values())
    assert max(counts) - min(counts) <= 2  # 60 * 3 pairs over 15 pairs: 12 each on average


def test_queue_repeats_come_later_never_adjacent_and_gold_once() -> None:
    for seed in range(200):
        rng = random.Random(seed)
        main = [f"m{i}" for i in range(rng.randint(3, 12))]
        gold = [f"g{i}" for i in range(rng.randint(0, 3))]
        repeats = rng.randint(0, len(main) - 1)
        q = queue(main, gold, repeats, random.Random(seed))
        kinds = Counter(kind for _, kind in q)
        assert kinds == Counter({"main": len(main), "gold": len(gold), **({"repeat": repeats} if repeats else {})})
        assert sorted(k for k, kind in q if kind == "main") == sorted(main)
        assert sorted(k for k, kind in q if kind == "gold") == sorted(gold)
        for i, (k, kind) in enumerate(q):
            if kind == "repeat":
                first = next(j for j, (k2, kind2) in enumerate(q) if k2 == k and kind2 == "main")
                assert i >= first + 2  # later, with at least one item in between
                assert q[i - 1][0] != k and (i + 1 == len(q) or q[i + 1][0] != k)
    with pytest.raises(JudgekitError, match="--repeats"):
        queue(["a", "b"], [], 2, random.Random(0))


# ------------------------------------------------------------------------------------------------- create

def test_create_writes_a_blind_self_contained_study_with_secret_links(tmp_path: Path) -> None:
    gold = make_gold(tmp_path / "goldfiles")
    s = _create(tmp_path, raters=5, overlap=3, size=30, repeats=2, gold=gold)
    folder = tmp_path / "study"
    assert sorted(p.name for p in folder.iterdir()) == ["images", "links.csv", "study.sqlite"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".study.tmp")]
    # links: mode 0600, one per rater plus the admin; only the tokens' hashes are in the database
    links = folder / "links.csv"
    assert stat.S_IMODE(links.stat().st_mode) == 0o600
    rows = list(csv.DictReader(links.open(encoding="utf-8")))
    assert [r["role"] for r in rows] == ["rater"] * 5 + ["admin"]
    assert all(r["url"] == "http://HOST:PORT" + r["path"] for r in rows)
    assert rows[-1]["path"].startswith("/a/") and all(r["path"].startswith("/r/") for r in rows[:-1])
    raw = (folder / "study.sqlite").read_bytes()
    with StudyStore(folder) as store:
        for r in rows:
            token = r["path"][3:]
            assert token.encode() not in raw
            if r["role"] == "rater":
                assert store.rater_of(token) == r["rater"]
                assert token_hash(token).encode() in raw
            else:
                assert store.is_admin(token)
        items = store.items()
        main = [i for i in items if i.gold is None]
        golds = [i for i in items if i.gold is not None]
        assert len(main) == 30 and len(golds) == 2
        assert all(i.judge == JUDGE and i.judge_overall is not None and i.judge_scores for i in main)
        assert golds[0].gold == {"technical_accuracy": 5, "overall": 5} and golds[0].judge_scores is None
        # images: copied into the study under content-addressed names, stored as relative paths
        for i in items:
            for p in (*i.images, *i.reference_images):
                assert p.startswith("images/") and (folder / p).is_file()
                name = Path(p).name
                assert len(name.split(".")[0]) == 64 and "nut" not in name
        assert any(i.images for i in main) and golds[0].images
        # blind: the model names and the judge's verdict live in the items table only
        db = sqlite3.connect(folder / "study.sqlite")
        for table in ("raters", "assignments", "ratings", "meta"):
            dump = repr(db.execute(f"SELECT * FROM {table}").fetchall())
            for model in BASE:
                assert model not in dump, (table, model)
        db.close()
        # loads, gold for everyone, repeats of one's own main items
        assert sorted(s.loads.values())[-1] - sorted(s.loads.values())[0] <= 1  # type: ignore[attr-defined]
        assert not s.uncovered_pairs  # type: ignore[attr-defined]
        for rater in store.raters():
            q = store.assignments(rater)
            kinds = Counter(a.kind for a in q)
            assert kinds["main"] in (18, 18) and kinds["gold"] == 2 and kinds["repeat"] == 2
            assert [a.position for a in q] == list(range(len(q)))
            mine = {a.item_key for a in q if a.kind == "main"}
            assert {a.item_key for a in q if a.kind == "repeat"} <= mine
        assert len({a.slot for a in store.assignments()}) == len(store.assignments())
        assert store.rating_keys() == [*RUBRIC.criterion_names, "overall"]


def test_create_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    _create(tmp_path, "a", repeats=1, seed=9)
    _create(tmp_path, "b", repeats=1, seed=9)
    _create(tmp_path, "c", repeats=1, seed=10)
    assert _queues(tmp_path / "a") == _queues(tmp_path / "b")
    assert _queues(tmp_path / "a") != _queues(tmp_path / "c")


def test_create_refuses_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    results = make_results(tmp_path / "results.jsonl")

    def refused(match: str, **kw: object) -> None:
        args: dict[str, object] = {"rubric": "robustmad", "responses": RESPONSES, "out": tmp_path / "s", "raters": 3,
                                   "overlap": 2, "size": 10}
        args.update(kw)
        source = args.pop("results", results)
        with pytest.raises(JudgekitError, match=match):
            create_study(source, **args)  # type: ignore[arg-type]
        assert not (tmp_path / "s").exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".s.tmp")]

    # a judged answer without its response
    partial = tmp_path / "partial.jsonl"
    rows = [json.loads(line) for line in RESPONSES.read_text().splitlines()][:-1]
    for r in rows:
        r["images"] = [str(RESPONSES.parent / p) for p in r["images"]]
        r["reference_images"] = [str(RESPONSES.parent / p) for p in r["reference_images"]]
    partial.write_text("".join(json.dumps(r) + "\n" for r in rows))
    refused("is not in the responses file", responses=partial)
    refused("between 1 and|only 3 raters", overlap=4)
    refused("--repeats", repeats=9)
    refused("4 names for 3 raters", rater_names_="a,b,c,d")
    refused("named twice", rater_names_="a,b,a")
    refused("reserved", rater_names_="a,admin,b")
    refused("not judged with this rubric", rubric="general")
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"id": "g", "question": "q", "reference": "r", "response": "a", "scores": {"overall": 7}}\n')
    with pytest.raises(JudgekitError) as err:
        create_study(results, rubric="robustmad", responses=RESPONSES, out=tmp_path / "s", raters=3, size=10,
                     gold=gold)
    assert f"{gold}:1: field 'scores.overall'" in str(err.value) and "outside the scale" in str(err.value)
    gold.write_text('{"id": "g", "question": "q", "reference": "r", "response": "a", "scores": {"novelty": 3}}\n')
    refused("not a rating key", gold=gold)
    gold.write_text('{"id": "g", "question": "q", "reference": "r", "response": "a"}\n')
    refused("known scores", gold=gold)
    # an existing study is never overwritten
    _create(tmp_path, "taken", raters=3, size=10)
    before = (tmp_path / "taken" / "study.sqlite").read_bytes()
    with pytest.raises(JudgekitError, match="already exists"):
        _create(tmp_path, "taken", raters=3, size=10)
    assert (tmp_path / "taken" / "study.sqlite").read_bytes() == before
    # several judges need --judge
    two = tmp_path / "two.jsonl"
    make_results(two)
    other = tmp_path / "other.jsonl"
    make_results(other, judge="openai/other")
    two.write_text(two.read_text() + other.read_text())
    refused("several judges", results=two)
    s = create_study(two, rubric="robustmad", responses=RESPONSES, out=tmp_path / "picked", raters=2, size=5,
                     judge="openai/other")
    with StudyStore(s.folder) as store:
        assert {i.judge for i in store.items()} == {"openai/other"}


# --------------------------------------------------------------------------------------------- add raters

def test_add_raters_shares_items_with_everyone_and_appends_links(tmp_path: Path) -> None:
    _create(tmp_path, raters=4, overlap=2, size=24, repeats=1, gold=make_gold(tmp_path / "g"))
    folder = tmp_path / "study"
    s = add_raters(folder, 2)
    with StudyStore(folder) as store:
        assert store.raters() == ["rater1", "rater2", "rater3", "rater4", "rater5", "rater6"]
        holders: dict[str, set[str]] = {}
        for a in store.assignments():
            if a.kind == "main":
                holders.setdefault(a.item_key, set()).add(a.rater)
        for new in ("rater5", "rater6"):
            q = store.assignments(new)
            kinds = Counter(a.kind for a in q)
            assert kinds == Counter({"main": 12, "gold": 2, "repeat": 1})  # the mean load of the first raters
            for other in store.raters():
                if other != new:
                    assert any({new, other} <= h for h in holders.values()), (new, other)
    assert not s.uncovered_pairs
    links = read_links(folder / "links.csv")
    assert [link.rater for link in links] == ["rater1", "rater2", "rater3", "rater4", "admin", "rater5", "rater6"]
    assert stat.S_IMODE((folder / "links.csv").stat().st_mode) == 0o600
    # --overlap K: every item brought up to K raters, the new slots split evenly
    s2 = add_raters(folder, 3, overlap=4, names="ann,bob,cy")
    with StudyStore(folder) as store:
        holders = {}
        for a in store.assignments():
            if a.kind == "main":
                holders.setdefault(a.item_key, set()).add(a.rater)
        assert all(len(h) >= 4 for h in holders.values())
    assert max(s2.loads.values()) - min(s2.loads.values()) <= 1
    with pytest.raises(JudgekitError, match="already exists"):
        add_raters(folder, names="ann")
    with pytest.raises(JudgekitError, match="--overlap"):
        add_raters(folder, 1, overlap=2)
    with pytest.raises(JudgekitError, match="no study here"):
        add_raters(tmp_path / "nothing", 1)


def test_create_keeps_the_answers_of_several_prompt_settings_apart(tmp_path: Path) -> None:
    """One responses file with the same questions answered in 0-shot and 1-shot+ (judgekit generate --shots): the
    judgments name the second "MODEL [1-shot+]", and each study item shows its own setting's answer."""
    from judgekit.io.dataio import write_records
    from judgekit.io.records import Judgment

    rows = []
    for r in sample_responses()[:12]:
        for shots in ("0", "1+"):
            rows.append({**r, "response": f"{r['response']} ({shots})",
                         "images": [str(SAMPLE / p) for p in r.get("images", [])],
                         "reference_images": [str(SAMPLE / p) for p in r.get("reference_images", [])],
                         "meta": {"generation": {"model": r["model"], "shots": shots, "knowledge": False}}})
    responses = tmp_path / "responses.jsonl"
    responses.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    judged = [Judgment(id=r["id"], model=r["model"] + (" [1-shot+]" if r["meta"]["generation"]["shots"] == "1+"
                                                       else ""),
                       setting="1-shot+" if r["meta"]["generation"]["shots"] == "1+" else "0-shot",
                       condition=r.get("condition"), category=r.get("category"), judge=JUDGE, status="scored",
                       scores=dict.fromkeys(RUBRIC.criterion_names, 4.0), overall=4.0, passed=True,
                       rubric="robustmad", rubric_version="1.0") for r in rows]
    results = tmp_path / "results.jsonl"
    write_records(results, judged)
    create_study(results, rubric="robustmad", responses=responses, out=tmp_path / "study", raters=2, overlap=2,
                 size=24, seed=1)
    with StudyStore(tmp_path / "study", readonly=True) as store:
        items = store.items()
    assert len(items) == 24
    for i in items:
        assert i.response.endswith("(1+)" if i.model.endswith(" [1-shot+]") else "(0)"), (i.model, i.response)
