"""The shipped synthetic sample dataset (judgekit/sample_data/robustmad_sample) and its generator."""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from judgekit.io.dataio import read_responses
from judgekit.sample_data import generate as gen

SHIPPED = gen.DEFAULT_OUT
FILES = ("items.jsonl", "responses.jsonl", "README.md")
F1_MARGIN = 0.15  # mean token-F1 must drop by at least this much from one model to the next


def _dataset_files(root: Path) -> list[str]:
    """Relative paths of the dataset's files under ``root`` (what the generator writes)."""
    return sorted([*FILES, *(f"images/{p.name}" for p in (root / "images").glob("*.png"))])


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _tokens(text: str) -> list[str]:
    """SQuAD-style normalisation: lower case, alphanumeric runs, articles dropped."""
    return [t for t in re.findall(r"[a-z0-9]+", text.lower()) if t not in ("a", "an", "the")]


def token_f1(answer: str, reference: str) -> float:
    """Token-overlap F1 of ``answer`` against ``reference`` (multiset overlap, 0 when nothing is shared)."""
    a, r = _tokens(answer), _tokens(reference)
    common = sum((Counter(a) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(r)
    return 2 * precision * recall / (precision + recall)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dataset generated afresh into a temporary folder."""
    out = tmp_path_factory.mktemp("sample")
    gen.generate(out)
    return out


def test_regenerated_text_and_pixels_identical(regenerated: Path) -> None:
    assert _dataset_files(regenerated) == _dataset_files(SHIPPED)
    for name in FILES:
        assert (regenerated / name).read_bytes() == (SHIPPED / name).read_bytes(), name
    for name in _dataset_files(SHIPPED):
        if name.endswith(".png"):
            new = gen.decode_png((regenerated / name).read_bytes())
            old = gen.decode_png((SHIPPED / name).read_bytes())
            assert np.array_equal(new, old), name


def test_regenerated_png_bytes_identical(regenerated: Path) -> None:
    if zlib.ZLIB_RUNTIME_VERSION != gen.ZLIB_REFERENCE_VERSION:
        pytest.skip(f"zlib {zlib.ZLIB_RUNTIME_VERSION} here, shipped PNGs made with {gen.ZLIB_REFERENCE_VERSION}: "
                    "the same pixels may deflate to other bytes (pixel identity is checked separately)")
    for name in _dataset_files(SHIPPED):
        assert (regenerated / name).read_bytes() == (SHIPPED / name).read_bytes(), name


def test_read_responses_loads_shipped_file() -> None:
    records = read_responses(SHIPPED / "responses.jsonl")  # checks that every image exists
    assert len(records) == len(gen.ITEMS) * len(gen.MODELS)
    assert {r.category for r in records} == set(gen.CATEGORIES)
    assert {r.model for r in records} == set(gen.MODELS)
    assert {r.condition for r in records} == {"clean"}
    answered: dict[str, set[str]] = defaultdict(set)
    for r in records:
        answered[r.id].add(r.model)
        assert r.images and all(Path(p).is_file() for p in r.images + r.reference_images)
        assert bool(r.reference_images) == (r.category == "pairwise")
    assert set(answered) == {it.id for it in gen.ITEMS}
    assert all(models == set(gen.MODELS) for models in answered.values())


def test_items_match_responses() -> None:
    items = _jsonl(SHIPPED / "items.jsonl")
    assert [set(it) for it in items] == [{"id", "question", "reference", "category", "images",
                                          "reference_images"}] * len(items)
    by_id = {it["id"]: it for it in items}
    assert len(by_id) == len(items) == len(gen.ITEMS)
    counts = Counter(str(it["category"]) for it in items)
    assert set(counts) == set(gen.CATEGORIES) and min(counts.values()) >= 5
    for row in _jsonl(SHIPPED / "responses.jsonl"):
        item = by_id[str(row["id"])]
        for key in ("question", "reference", "category", "images", "reference_images"):
            assert row[key] == item[key], (row["id"], key)


def test_images_are_valid_pngs_of_the_stated_size() -> None:
    names = _dataset_files(SHIPPED)
    pngs = [n for n in names if n.endswith(".png")]
    assert len(pngs) == len(gen.IMAGES)
    used = {str(p) for it in _jsonl(SHIPPED / "items.jsonl")
            for key in ("images", "reference_images") for p in it[key]}
    assert used == set(pngs)  # every image is used and every used image is shipped
    total = sum((SHIPPED / n).stat().st_size for n in names)
    assert total < 1_500_000
    for name in pngs:
        pixels = gen.decode_png((SHIPPED / name).read_bytes())
        assert pixels.shape == (gen.SIZE, gen.SIZE, 3) and pixels.dtype == np.uint8
        assert pixels.std() > 10, f"{name} looks blank"


def test_each_defect_lies_in_the_named_grid_cell() -> None:
    good = {s.obj: gen.decode_png((SHIPPED / f"images/{s.name}.png").read_bytes()).astype(np.int32)
            for s in gen.IMAGES if s.defect is None}
    third = gen.SIZE / 3
    for spec in gen.IMAGES:
        if spec.defect is None:
            continue
        img = gen.decode_png((SHIPPED / f"images/{spec.name}.png").read_bytes()).astype(np.int32)
        diff = np.abs(img - good[spec.obj]).sum(axis=2)
        cells = [diff[round(r * third):round((r + 1) * third), round(c * third):round((c + 1) * third)].sum()
                 for r in range(3) for c in range(3)]
        best = int(np.argmax(cells))
        assert gen.GRID_CELLS[best] == spec.location, spec.name
        assert cells[best] > 0.6 * sum(cells), spec.name


def test_ground_truth_style() -> None:
    for it in gen.ITEMS:
        assert len(it.reference.split()) <= 50, it.id
        assert all(len(a.split()) <= 50 for a in it.answers), it.id
        spec = next(s for s in gen.IMAGES if s.name == it.image)
        if it.category in ("anomaly_detection", "pairwise") and spec.location:
            assert re.search(rf"(?<![\w-]){re.escape(spec.location)}(?![\w-])", it.reference), it.id


def test_model_quality_is_ordered_by_token_f1() -> None:
    scores: dict[str, list[float]] = defaultdict(list)
    for row in _jsonl(SHIPPED / "responses.jsonl"):
        scores[str(row["model"])].append(token_f1(str(row["response"]), str(row["reference"])))
    means = {m: float(np.mean(v)) for m, v in scores.items()}
    strong, medium, weak = (means[m] for m in gen.MODELS)
    assert strong - medium >= F1_MARGIN, means
    assert medium - weak >= F1_MARGIN, means
    for category in gen.CATEGORIES:  # the order holds within every category too
        per_model = [np.mean([token_f1(it.answers[k], it.reference) for it in gen.ITEMS if it.category == category])
                     for k in range(len(gen.MODELS))]
        assert per_model[0] > per_model[1] > per_model[2], (category, per_model)
