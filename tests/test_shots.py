"""MMAD prompt settings for generation: K-shot templates, 1-shot+ retrieval (SSIM - Bhattacharyya, cached
features), domain knowledge, generation keys, meta.generation, and the setting column of ``judgekit mcq``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from scripted_server import ScriptedServer
from skimage.metrics import structural_similarity
from test_cli_e2e import flat, jk, read_jsonl, write_jsonl

from judgekit.generation import shots as S
from judgekit.generation.candidates import PRESETS, generation_key, generation_messages
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Item
from judgekit.judging.backends import JudgeSpec


def _pattern(k: int, seed: int = 0) -> np.ndarray:
    """A 64x64 BGR image, distinct per k: stripes of period 4+3k in a colour of its own."""
    img = np.zeros((64, 64, 3), np.uint8)
    period = 4 + 3 * k
    mask = (np.arange(64) // period) % 2 == 0
    colour = np.array([(40 * k + 30) % 256, (90 * k + 60) % 256, (150 + 25 * k) % 256], np.uint8)
    img[mask] = colour
    img[~mask] = colour // 3
    return img


def _templates(tmp: Path, product: str = "bottle", n: int = 5) -> list[Path]:
    folder = tmp / "templates" / product
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        p = folder / f"t{k}.png"
        cv2.imwrite(str(p), _pattern(k))
        paths.append(p)
    return paths


def _query(tmp: Path, k: int = 3, name: str = "query.png") -> Path:
    rng = np.random.default_rng(7)
    noisy = np.clip(_pattern(k).astype(int) + rng.integers(-12, 13, size=(64, 64, 3)), 0, 255).astype(np.uint8)
    p = tmp / name
    cv2.imwrite(str(p), noisy)
    return p


def _item(query: Path, id: str = "q1", product: str = "bottle", **kw) -> Item:  # type: ignore[no-untyped-def]
    return Item(id=id, question="Is there a defect?", reference="No.", images=[str(query)],
                meta={"product": product}, **kw)


def test_retrieval_picks_the_noisy_copy_and_the_score_is_ssim_minus_bhattacharyya(tmp_path: Path) -> None:
    temps = _templates(tmp_path)
    query = _query(tmp_path, 3)
    plan = S.make_plan([], shots="1+", templates=tmp_path / "templates", cache_dir=tmp_path / "cache")
    chosen = plan.for_item(_item(query))
    assert chosen.templates == (str(temps[3]),)
    # the score, computed directly with skimage and cv2 on the same inputs
    q = cv2.resize(cv2.imread(str(query)), (256, 256), interpolation=cv2.INTER_AREA)
    t = cv2.resize(cv2.imread(str(temps[1])), (256, 256), interpolation=cv2.INTER_AREA)
    ssim = structural_similarity(cv2.cvtColor(q, cv2.COLOR_BGR2GRAY), cv2.cvtColor(t, cv2.COLOR_BGR2GRAY),
                                 data_range=255)
    hq = cv2.calcHist([q], [0, 1, 2], None, [8, 8, 8], [0, 256, 0, 256, 0, 256])
    ht = cv2.calcHist([t], [0, 1, 2], None, [8, 8, 8], [0, 256, 0, 256, 0, 256])
    want = ssim - cv2.compareHist(hq, ht, cv2.HISTCMP_BHATTACHARYYA)
    got = S.similarity(S.features(S.read_bgr(str(query))), S.features(S.read_bgr(str(temps[1]))))
    assert got == pytest.approx(want, abs=1e-9)


def test_features_are_cached_on_disk_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _templates(tmp_path)
    query = _query(tmp_path, 3)
    calls = []
    real = S.features
    monkeypatch.setattr(S, "features", lambda img: calls.append(1) or real(img))
    first = S.make_plan([], shots="1+", templates=tmp_path / "templates", cache_dir=tmp_path / "cache")
    pick = first.for_item(_item(query))
    assert len(calls) == 6 and len(list((tmp_path / "cache").glob("*.npz"))) == 6
    second = S.make_plan([], shots="1+", templates=tmp_path / "templates", cache_dir=tmp_path / "cache")
    assert second.for_item(_item(query)) == pick
    assert len(calls) == 6 and second.cache.computed == 0  # every feature read from the cache


def test_the_query_never_picks_itself(tmp_path: Path) -> None:
    temps = _templates(tmp_path)
    copy = tmp_path / "same_as_t2.png"
    copy.write_bytes(temps[2].read_bytes())
    plan = S.make_plan([], shots="1+", templates=tmp_path / "templates")
    chosen = plan.for_item(_item(copy))
    assert chosen.templates and chosen.templates[0] != str(temps[2])
    k_plan = S.make_plan([], shots="4", templates=tmp_path / "templates")
    assert str(temps[2]) not in k_plan.for_item(_item(copy)).templates
    with pytest.raises(JudgekitError, match="needs 5"):
        S.make_plan([], shots="5", templates=tmp_path / "templates").for_item(_item(copy))


def test_k_shot_is_deterministic_and_same_product_only(tmp_path: Path) -> None:
    bottles = _templates(tmp_path, "bottle")
    _templates(tmp_path, "Metal_Nut")
    query = _query(tmp_path)
    plan = S.make_plan([], shots="2", templates=tmp_path / "templates")
    a = plan.for_item(_item(query, id="x"))
    assert a == S.make_plan([], shots="2", templates=tmp_path / "templates").for_item(_item(query, id="x"))
    assert len(a.templates) == 2 and set(a.templates) <= {str(p) for p in bottles}
    picks = {plan.for_item(_item(query, id=f"id{k}")).templates for k in range(12)}
    assert len(picks) > 1  # seeded by the item id, not one fixed choice
    nut = plan.for_item(_item(query, product="metal-nut"))
    assert all("Metal_Nut" in p for p in nut.templates)
    with pytest.raises(JudgekitError, match="0 normal template"):
        plan.for_item(_item(query, product="cable"))


def test_templates_from_items_marked_normal(tmp_path: Path) -> None:
    temps = _templates(tmp_path)
    normal = [Item(id=f"n{k}", question="Q?", reference="No.", category="bottle", images=[str(p)],
                   meta={"normal": True}) for k, p in enumerate(temps)]
    query = _query(tmp_path, 3)
    plan = S.make_plan(normal, shots="1+")
    assert plan.for_item(_item(query)).templates == (str(temps[3]),)
    assert plan.for_item(normal[3]).templates != (str(temps[3]),)  # a normal item is not its own template
    with pytest.raises(JudgekitError, match="needs normal templates"):
        S.make_plan([_item(query)], shots="1")
    with pytest.raises(JudgekitError, match="templates folder not found"):
        S.make_plan([], shots="1", templates=tmp_path / "nope")
    bad = tmp_path / "templates" / "bottle" / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(JudgekitError, match=r"broken\.png"):
        S.make_plan([], shots="1+", templates=tmp_path / "templates").for_item(_item(query))


def test_knowledge_lands_in_the_prompt_of_its_product_only(tmp_path: Path) -> None:
    kf = tmp_path / "domain_knowledge.json"
    kf.write_text(json.dumps({"MVTec": {"bottle": {"good": "Bottles are round.", "broken": "Cracks on the rim."},
                                        "cable": {"good": "Three wires."}}}))
    plan = S.make_plan([], knowledge=kf)
    query = _query(tmp_path)
    bottle = plan.for_item(_item(query, dataset="mvtec"))
    assert bottle.knowledge == "Bottles are round.\n\nCracks on the rim." and not bottle.templates
    text = generation_messages(_item(query), PRESETS["plain"], shots=bottle)[0]["content"][-1]["text"]
    assert "Cracks on the rim." in text and "Three wires." not in text and text.endswith("Is there a defect?")
    assert plan.for_item(_item(query, product="cable", dataset="MVTec-AD")).knowledge == "Three wires."
    assert plan.for_item(_item(query, product="zipper")).knowledge is None
    flat_file = tmp_path / "flat.json"
    flat_file.write_text(json.dumps({"bottle": "Round."}))
    assert S.make_plan([], knowledge=flat_file).for_item(_item(query)).knowledge == "Round."
    for bad in ("[1, 2]", '{"a": 3}', '{"a": {"b": {"c": {"d": "x"}}}}', "{not json"):
        f = tmp_path / "bad.json"
        f.write_text(bad)
        with pytest.raises(JudgekitError, match=r"bad\.json"):
            S.make_plan([], knowledge=f)


def test_prompt_wording_and_keys(tmp_path: Path) -> None:
    temps = _templates(tmp_path)
    query = _query(tmp_path)
    item = _item(query)
    spec = JudgeSpec(model="openai/x")
    kw = {"temperature": 0.0, "max_tokens": 512, "images": True}
    base = generation_key(item, spec, PRESETS["plain"], **kw)
    assert generation_key(item, spec, PRESETS["plain"], shots=S.Shots(), **kw) == base  # default: same key
    # the default key is the one computed before settings existed (pinned value of this exact item)
    assert base == generation_key(item, spec, PRESETS["plain"], shots=None, **kw)
    one = S.Shots((str(temps[0]),))
    other = S.Shots((str(temps[1]),))
    know = S.Shots((), "Round.")
    keys = {base, generation_key(item, spec, PRESETS["plain"], shots=one, **kw),
            generation_key(item, spec, PRESETS["plain"], shots=other, **kw),
            generation_key(item, spec, PRESETS["plain"], shots=know, **kw)}
    assert len(keys) == 4
    parts = generation_messages(item, PRESETS["plain"], shots=S.Shots((str(temps[0]), str(temps[1]))))[0]["content"]
    assert [p["type"] for p in parts] == ["image_url"] * 3 + ["text"]
    assert parts[-1]["text"].startswith("The first 2 images show normal, defect-free examples of this product;")
    assert generation_messages(item, PRESETS["plain"]) == generation_messages(item, PRESETS["plain"], shots=S.Shots())


def test_default_key_is_unchanged_from_before(tmp_path: Path) -> None:
    """The key of the default setting, written out as the code computed it before settings existed."""
    import hashlib

    from judgekit.judging.store import _file_sha256

    query = _query(tmp_path)
    item = _item(query)
    spec = JudgeSpec(model="openai/x")
    doc = {"kind": "generate", "p": "gen-1", "preset": "plain", "instruction": None, "m": "openai/x", "t": 0.0,
           "mt": 512, "seed": spec.seed, "extra": spec.extra, "id": "q1", "q": "Is there a defect?", "opts": [],
           "cond": None, "images": True, "img": [_file_sha256(str(query))], "rimg": []}
    want = hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    plan = S.make_plan([item])
    assert generation_key(item, spec, PRESETS["plain"], temperature=0.0, max_tokens=512, images=True,
                          shots=plan.for_item(item)) == want


def test_generate_one_shot_plus_end_to_end_then_mcq_setting_column(tmp_path: Path) -> None:
    temps = _templates(tmp_path)
    query = _query(tmp_path, 3)
    kf = tmp_path / "dk.json"
    kf.write_text(json.dumps({"MVTec": {"bottle": {"good": "Bottles are round."}}}))
    rows = [{"id": f"m{k}", "question": "Is there a defect? [[script:say=B]]", "reference": "B",
             "options": ["Yes", "No"], "category": "Anomaly Detection", "images": [str(query)],
             "meta": {"product": "bottle"}} for k in range(6)]
    items = write_jsonl(tmp_path / "items.jsonl", rows)
    store = tmp_path / "store.sqlite"
    with ScriptedServer() as server:
        zero = jk("generate", items, "--model", "openai/cand", "--api-base", server.base_url, "--out",
                  tmp_path / "zero.jsonl", "--store", store, "--no-progress")
        assert zero.returncode == 0, zero.stderr
        plus = jk("generate", items, "--model", "openai/cand", "--api-base", server.base_url, "--shots", "1+",
                  "--templates", tmp_path / "templates", "--knowledge", kf, "--out", tmp_path / "plus.jsonl",
                  "--store", store, "--no-progress")
        assert plus.returncode == 0, plus.stderr
        assert len(server.log) == 12  # a different setting is a different call
        assert [e["image_parts"] for e in server.log[6:]] == [2] * 6
        again = jk("generate", items, "--model", "openai/cand", "--api-base", server.base_url, "--shots", "1+",
                   "--templates", tmp_path / "templates", "--knowledge", kf, "--out", tmp_path / "plus.jsonl",
                   "--store", store, "--no-progress")
        assert again.returncode == 0 and len(server.log) == 12
        missing = jk("generate", items, "--model", "openai/cand", "--api-base", server.base_url, "--shots", "1",
                     "--templates", tmp_path / "nowhere", "--out", tmp_path / "x.jsonl", "--store", store,
                     "--no-progress")
        assert missing.returncode == 2 and "nowhere" in missing.stderr and "Traceback" not in missing.stderr
    gen = read_jsonl(tmp_path / "plus.jsonl")[0]["meta"]["generation"]
    assert gen["shots"] == "1+" and gen["knowledge"] is True and len(gen["templates"]) == 1
    assert (tmp_path / gen["templates"][0]).resolve() == temps[3].resolve()
    assert read_jsonl(tmp_path / "zero.jsonl")[0]["meta"]["generation"]["shots"] == "0"
    r = jk("mcq", tmp_path / "zero.jsonl", tmp_path / "plus.jsonl", "--markdown", tmp_path / "mcq.md")
    assert r.returncode == 0, r.stderr
    out = flat(r.stdout)
    assert "setting" in out and "1-shot+ + knowledge" in out and "0-shot" in out
    md = (tmp_path / "mcq.md").read_text()
    assert "Gain of each setting" in md and "| openai/cand | - | 0-shot | 1-shot+ + knowledge | 6 |" in md
