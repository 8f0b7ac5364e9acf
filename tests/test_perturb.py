"""judgekit.perturbation.ops and judgekit perturb: exactness of the robustmad preset, determinism, severity ladders,
bad images, the manifest and the items file."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from judgekit.io.errors import JudgekitError
from judgekit.perturbation import ops as P
from judgekit.perturbation.files import parse_conditions, parse_severities, run_perturb
from judgekit.sample_data import sample_responses

SAMPLE_IMAGES = Path(sample_responses()).parent / "images"
SAMPLE_ITEMS = Path(sample_responses()).parent / "items.jsonl"

# RobustMAD_MCQ_low.json lists its 410 image pairs in the order of selected_images_vetted.json, each tagged
# by the folder it was written to; these are the tags of the first 40 pairs ('light' -> low_light).
PUBLISHED_FIRST_40 = [
    "blur", "blur", "blur", "blur", "light", "light", "blur", "light", "blur", "light",
    "blur", "blur", "light", "light", "blur", "light", "blur", "light", "light", "light",
    "light", "blur", "blur", "light", "blur", "light", "light", "blur", "light", "blur",
    "light", "light", "light", "light", "blur", "light", "blur", "blur", "blur", "light",
]


def _textured(h: int = 96, w: int = 128, channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w, channels) if channels > 1 else (h, w), dtype=np.uint8)
    return cv2.GaussianBlur(base, (0, 0), 1.2)


def _sample() -> np.ndarray:
    return cv2.imread(str(SAMPLE_IMAGES / "screw_scratch.png"))


def _robustmad_blur_formula(img: np.ndarray) -> np.ndarray:
    """Each pixel: the mean of src[y-1, x-6 .. x+5] (reflect-101 border), rounded half to even, in integers."""
    pad = [(1, 0), (6, 5)] + [(0, 0)] * (img.ndim - 2)
    p = np.pad(img.astype(np.int64), pad, mode="reflect")  # numpy 'reflect' is OpenCV's reflect-101
    h, w = img.shape[:2]
    s = sum(p[0:h, j:j + w] for j in range(12))
    q, r = np.divmod(s, 12)
    up = (r > 6) | ((r == 6) & (q % 2 == 1))
    return (q + up).astype(np.uint8)


# ------------------------------------------------------------------------------------------- robustmad

@pytest.mark.parametrize("channels", [1, 3, 4])
def test_robustmad_low_light_is_the_formula_for_every_grey_level(channels: int) -> None:
    x = np.tile(np.arange(256, dtype=np.uint8), (32, 1))
    img = x if channels == 1 else np.dstack([x] * channels)
    if channels == 4:
        img[:, :, 3] = 77
    out = P.robustmad_low_light(img)
    expected = np.array([min(255, round(abs(0.6 * v - 10))) for v in range(256)], np.uint8)
    colour = out if channels == 1 else out[:, :, :3]
    assert np.array_equal(colour, np.broadcast_to(expected[x][..., None] if channels > 1 else expected[x],
                                                  colour.shape))
    if channels == 4:
        assert (out[:, :, 3] == 77).all()
    assert expected[0] == 10 and expected[10] == 4 and expected[17] == 0 and expected[255] == 143


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_robustmad_motion_blur_is_the_12_pixel_formula(channels: int) -> None:
    img = _textured(70, 90, channels, seed=channels)
    out = P.robustmad_motion_blur(img)
    colour = img[:, :, :3] if channels == 4 else img
    expected = _robustmad_blur_formula(colour)
    assert np.array_equal(out[:, :, :3] if channels == 4 else out, expected)
    if channels == 4:
        assert np.array_equal(out[:, :, 3], img[:, :, 3])


def test_robustmad_motion_blur_table_path_equals_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    img = _textured(50, 70, 3, seed=9)
    fast = P.robustmad_motion_blur(img)
    monkeypatch.setattr(P, "_scale_rounds_exactly", lambda: False)
    assert np.array_equal(P.robustmad_motion_blur(img), fast)
    assert np.array_equal(fast, _robustmad_blur_formula(img))


def test_robustmad_motion_blur_matches_the_original_call_except_at_half_way_means() -> None:
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (128, 160, 3), dtype=np.uint8)
    kernel = np.zeros((12, 12))
    kernel[int((12 - 1) / 2), :] = np.ones(12)
    original = cv2.filter2D(img, -1, kernel / 12)
    assert np.array_equal(P.robustmad_motion_blur(img, impl="filter2d"), original)
    ours = P.robustmad_motion_blur(img)
    p = np.pad(img.astype(np.int64), [(1, 0), (6, 5), (0, 0)], mode="reflect")
    s = sum(p[0:128, j:j + 160] for j in range(12))
    diff = ours.astype(int) - original.astype(int)
    assert np.abs(diff).max() <= 1
    assert not diff[s % 12 != 6].any()  # differences only where the mean is exactly k + 1/2


def test_robustmad_assignment_reproduces_the_published_one() -> None:
    labels = P.robustmad_assignment(410)
    tags = ["light" if x == "low_light" else "blur" for x in labels]
    assert tags[:40] == PUBLISHED_FIRST_40
    assert labels.count("low_light") == 205 and labels.count("motion_blur") == 205
    odd = P.robustmad_assignment(7)
    assert odd.count("low_light") == 4 and odd.count("motion_blur") == 3  # the odd one is low light
    assert P.robustmad_assignment(410, seed=1) != labels


# ------------------------------------------------------------------------------------------ operations

def test_filter_direct_equals_opencv_correlation() -> None:
    img = _textured(80, 100)
    for length, angle in ((13, 30.0), (27, 45.0), (19, 80.0), (9, 0.0)):
        k = P.line_kernel(length, angle)
        assert abs(k.sum() - 1) < 1e-9
        ref = np.clip(np.rint(cv2.filter2D(img.astype(np.float32), -1, k.astype(np.float32))), 0, 255)
        diff = np.abs(P.filter_direct(img, k).astype(int) - ref.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_horizontal_motion_blur_is_a_centred_row_mean() -> None:
    img = _textured()
    out = P.motion_blur(img, length=5)
    p = np.pad(img.astype(np.float64), [(0, 0), (2, 2), (0, 0)], mode="reflect")
    ref = sum(p[:, j:j + img.shape[1]] for j in range(5)) / 5
    assert np.abs(out.astype(float) - ref).max() <= 0.5 + 1e-9
    assert np.array_equal(P.motion_blur(img, length=1), img)


def _laplacian_var(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


STATISTICS = {
    "motion_blur": (_laplacian_var, "down"),
    "defocus_blur": (_laplacian_var, "down"),
    "low_light": (lambda img: float(img.mean()), "down"),
    "gaussian_noise": (lambda img: float(np.abs(img.astype(int) - _sample().astype(int)).mean()), "up"),
    "jpeg": (lambda img: float(((img.astype(int) - _sample().astype(int)) ** 2).mean()), "up"),
}


@pytest.mark.parametrize("op", P.OPERATIONS)
def test_severity_moves_a_measured_statistic_monotonically(op: str) -> None:
    img = _sample()
    stat, direction = STATISTICS[op]
    values = [stat(img)] + [stat(P.degrade(img, [P.steps_for(op, s)], seed=3)) for s in range(1, 6)]
    steps = np.diff(values)
    assert (steps < 0).all() if direction == "down" else (steps > 0).all(), values


@pytest.mark.parametrize("op", P.OPERATIONS)
def test_deterministic_for_a_seed_and_shape_preserving(op: str) -> None:
    for channels in (1, 3, 4):
        img = _textured(64, 72, channels)
        a = P.degrade(img, [P.steps_for(op, 4)], seed=11)
        b = P.degrade(img, [P.steps_for(op, 4)], seed=11)
        assert np.array_equal(a, b) and a.shape == img.shape and a.dtype == np.uint8
        if channels == 4:
            assert np.array_equal(a[:, :, 3], img[:, :, 3])
    img = _textured()
    if op == "gaussian_noise":
        assert not np.array_equal(P.degrade(img, [P.steps_for(op, 3)], seed=1),
                                  P.degrade(img, [P.steps_for(op, 3)], seed=2))


def test_composition_applies_steps_in_order() -> None:
    img = _sample()
    steps = [P.steps_for("motion_blur", 3), P.steps_for("low_light", 3)]
    composed = P.degrade(img, steps)
    by_hand = P.low_light(P.motion_blur(img, length=13), gain=0.5, gamma=1.6)
    assert np.array_equal(composed, by_hand)
    assert not np.array_equal(composed, P.degrade(img, steps[::-1]))


def test_random_angle_and_noise_come_from_the_image_generator() -> None:
    img = _textured()
    step = P.steps_for("motion_blur", 2, {"angle": "random"})
    sha = hashlib.sha256(img.tobytes()).hexdigest()
    a = P.degrade(img, [step], seed=P.image_rng(0, "c", sha))
    b = P.degrade(img, [step], seed=P.image_rng(0, "c", sha))
    c = P.degrade(img, [step], seed=P.image_rng(1, "c", sha))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_bad_parameters_and_images_are_refused() -> None:
    with pytest.raises(JudgekitError, match="unknown degradation 'fog'"):
        P.steps_for("fog", 1)
    with pytest.raises(JudgekitError, match="severity must be 1-5"):
        P.steps_for("jpeg", 6)
    with pytest.raises(JudgekitError, match="has no parameter 'radius'"):
        P.steps_for("jpeg", 1, {"radius": "3"})
    with pytest.raises(JudgekitError, match="quality must be in"):
        P.steps_for("jpeg", 1, {"quality": "0"})
    with pytest.raises(JudgekitError, match="too small"):
        P.degrade(np.zeros((16, 64, 3), np.uint8), [P.steps_for("jpeg", 1)])
    with pytest.raises(JudgekitError, match="8-bit"):
        P.degrade(np.zeros((64, 64), np.uint16), [P.steps_for("jpeg", 1)])


def test_condition_and_severity_parsing() -> None:
    assert parse_severities("1-3,5") == [1, 2, 3, 5]
    assert parse_severities("4") == [4]
    for bad in ("0", "2-1", "x", "1-6"):
        with pytest.raises(JudgekitError, match="--severity"):
            parse_severities(bad)
    conds = parse_conditions("motion_blur:angle=30,jpeg+low_light", [1, 5])
    assert [c.name for c in conds] == ["motion_blur:angle=30@1", "motion_blur:angle=30@5", "jpeg@1+low_light@1",
                                       "jpeg@5+low_light@5"]
    assert conds[1].steps[0].params == {"length": 27, "angle": 30.0}
    with pytest.raises(JudgekitError, match="given twice"):
        parse_conditions("jpeg,jpeg", [1])


# ------------------------------------------------------------------------------------------------- files

def _write_images(folder: Path) -> dict[str, np.ndarray]:
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    imgs = {"a/000.png": _textured(64, 80, 3, 1), "b/000.png": _textured(64, 80, 1, 2),
            "b/part.jpg": _textured(64, 80, 3, 3), "a/alpha.png": _textured(64, 80, 4, 4)}
    for rel, img in imgs.items():
        cv2.imwrite(str(folder / rel), img)
    return imgs


def test_folder_run_keeps_stems_formats_channels_and_hashes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    imgs = _write_images(src)
    out = tmp_path / "out"
    conds = parse_conditions("motion_blur,gaussian_noise", [2])
    res = run_perturb(src, out, conditions=conds, threads=2)
    assert len(res.rows) == 8 and res.items is None
    outputs = {r["output"] for r in res.rows}
    assert "motion_blur@2/a/000_motion_blur@2.png" in outputs
    assert "gaussian_noise@2/b/part_gaussian_noise@2.jpg" in outputs
    for r in res.rows:
        f = out / r["output"]
        assert hashlib.sha256(f.read_bytes()).hexdigest() == r["sha256_output"]
        assert hashlib.sha256((out / r["source"]).resolve().read_bytes()).hexdigest() == r["sha256_source"]
        assert r["seed"] == 0 and r["severity"] == 2 and r["steps"][0]["op"] == r["condition"].split("@")[0]
        back = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        src_img = imgs[str(Path(r["output"]).relative_to(r["output"].split("/")[0]).parent / Path(r["source"]).name)]
        assert back.shape == src_img.shape
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 8 and not list(out.glob(".judgekit-staging-*"))
    again = run_perturb(src, tmp_path / "out2", conditions=conds, threads=1)
    assert [r["sha256_output"] for r in again.rows] == [r["sha256_output"] for r in res.rows]


def test_items_run_with_the_preset_degrades_pairs_alike(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write_images(src)
    rows = [{"id": f"q{i}", "question": "Is there a defect?", "reference": "No.", "category": "pair",
             "images": ["src/a/000.png"], "reference_images": ["src/b/000.png"]} for i in range(3)]
    rows += [{"id": f"s{i}", "question": "What is it?", "reference": "A part.", "images": [f"src/{p}"]}
             for i, p in enumerate(["b/part.jpg", "a/alpha.png"])]
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "deg"
    res = run_perturb(items, out, preset="robustmad")
    expected = P.robustmad_assignment(3)  # 3 distinct pairs: (000, ref 000), part.jpg, alpha.png
    written = [json.loads(x) for x in (out / "items.jsonl").read_text().splitlines()]
    clean = [w for w in written if w["condition"] == "clean"]
    degraded = [w for w in written if w["condition"] != "clean"]
    assert len(clean) == 5 and len(degraded) == 5
    by_id = {w["id"]: w for w in degraded}
    assert {by_id[f"q{i}"]["condition"] for i in range(3)} == {expected[0]}
    assert by_id["s0"]["condition"] == expected[1] and by_id["s1"]["condition"] == expected[2]
    q = by_id["q0"]
    cond = q["condition"]
    assert q["images"] == [f"{cond}/a/000_{cond}.png"] and q["reference_images"] == [f"{cond}/b/000_{cond}.png"]
    for w in written:  # every path in the items file resolves from its folder
        for p in w.get("images", []) + w.get("reference_images", []):
            assert (out / p).is_file(), p
    first = cv2.imread(str(src / "a/000.png"))
    made = cv2.imread(str(out / q["images"][0]))
    want = P.robustmad_low_light(first) if cond == "low_light" else P.robustmad_motion_blur(first)
    assert np.array_equal(made, want)
    assert all(r["seed"] == 42 and r["preset"] == "robustmad" for r in res.rows)


def _run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "judgekit.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def _symlink_loop(p: Path) -> None:
    p.symlink_to(p.with_suffix(".lnk").name)
    p.with_suffix(".lnk").symlink_to(p.name)


def _giant_png(p: Path, width: int = 30000, height: int = 30000) -> None:
    """A PNG of ~100 bytes whose header says ``width`` x ``height`` (1-bit grey; only its first rows of data)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + bytes((width + 7) // 8) for _ in range(4))
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                  + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("make_bad, message", [
    (lambda p: p.write_text("not an image"), "not an image file (PNG, JPEG, GIF, WebP, BMP or TIFF expected"),
    (lambda p: p.write_bytes(b""), "empty image file"),
    (_giant_png, "image is 30000 x 30000 = 900 megapixels, above the limit of 100 megapixels"),
    (_symlink_loop, "symbolic link loop"),
    (lambda p: p.write_bytes(cv2.imencode(".png", _textured())[1].tobytes()[:60]), "not a readable image"),
    (lambda p: cv2.imwrite(str(p), _textured(20, 200)), "too small"),
    (lambda p: cv2.imwrite(str(p), (_textured(64, 64, 1).astype(np.uint16) * 200)), "8-bit"),
])
def test_cli_refuses_a_bad_image_and_writes_nothing(tmp_path: Path, make_bad, message: str) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    _write_images(src)
    bad = src / "b" / "zz_bad.png"
    make_bad(bad)
    out = tmp_path / "out"
    proc = _run_cli("perturb", src, "--ops", "motion_blur,low_light", "--severity", "1-2", "--out", out)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "zz_bad.png" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_cli_end_to_end_and_argument_errors(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _run_cli("perturb", SAMPLE_ITEMS, "--preset", "robustmad", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "degraded images" in proc.stdout and (out / "items.jsonl").is_file()
    n_items = len(SAMPLE_ITEMS.read_text().splitlines())
    assert len((out / "items.jsonl").read_text().splitlines()) == 2 * n_items
    for args, msg in ((("--ops", "fog"), "unknown degradation 'fog'"),
                      (("--ops", "jpeg", "--preset", "robustmad"), "not both"),
                      ((), "give --ops"),
                      (("--ops", "jpeg", "--severity", "9"), "severities must be within 1-5"),
                      (("--ops", "jpeg", "--opencv-filter2d"), "robustmad only")):
        proc = _run_cli("perturb", SAMPLE_IMAGES, *args, "--out", tmp_path / "x")
        assert proc.returncode == 2 and msg in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert not (tmp_path / "x").exists()
    proc = _run_cli("perturb", tmp_path / "missing", "--ops", "jpeg", "--out", tmp_path / "x")
    assert proc.returncode == 2 and "not found" in proc.stderr


def test_an_output_folder_inside_the_input_is_not_read_back(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write_images(src)
    conds = parse_conditions("jpeg", [1])
    first = run_perturb(src, src / "deg", conditions=conds)
    second = run_perturb(src, src / "deg", conditions=conds)
    assert len(first.rows) == len(second.rows) == 4
    assert [r["sha256_output"] for r in first.rows] == [r["sha256_output"] for r in second.rows]


# ------------------------------------------------------------------------------------ big and looping images

def test_read_image_checks_the_header_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _giant_png(tmp_path / "giant.png")
    with pytest.raises(JudgekitError, match="30000 x 30000 = 900 megapixels, above the limit") as info:
        P.read_image(str(tmp_path / "giant.png"))
    assert info.value.path == str(tmp_path / "giant.png")
    cv2.imwrite(str(tmp_path / "ok.png"), _textured(64, 80))
    assert P.read_image(str(tmp_path / "ok.png")).shape == (64, 80, 3)
    monkeypatch.setenv("JUDGEKIT_MAX_IMAGE_PIXELS", str(64 * 80 - 1))
    with pytest.raises(JudgekitError, match=r"80 x 64 = 0\.00512 megapixels, above the limit"):
        P.read_image(str(tmp_path / "ok.png"))


def test_an_items_file_with_a_looping_or_giant_image_names_its_line(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write_images(src)
    _symlink_loop(src / "loop.png")
    _giant_png(src / "giant.png")
    for bad in ("loop.png", "giant.png"):
        rows = [{"id": "a", "question": "q", "reference": "r", "images": ["src/a/000.png"]},
                {"id": "b", "question": "q", "reference": "r", "images": ["src/a/000.png"],
                 "reference_images": [f"src/{bad}"]}]
        items = tmp_path / "items.jsonl"
        items.write_text("".join(json.dumps(r) + "\n" for r in rows))
        proc = _run_cli("perturb", items, "--ops", "jpeg", "--out", tmp_path / "out")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert f"{items}:2: field 'reference_images': " in proc.stderr and bad in proc.stderr
        assert not (tmp_path / "out").exists()
    proc = _run_cli("perturb", src / "loop.png", "--ops", "jpeg", "--out", tmp_path / "out")
    assert proc.returncode == 2 and "symbolic link loop" in proc.stderr and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------------- re-running into --out

def _tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative posix path -> sha256)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


def test_a_rerun_removes_the_earlier_output_it_does_not_write_again(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write_images(src)
    out = tmp_path / "out"
    first = run_perturb(src, out, conditions=parse_conditions("jpeg,low_light", [1, 2]))
    assert len(first.rows) == 16 and first.removal_note() is None
    (out / "notes.txt").write_text("mine")  # not listed in the manifest: kept
    (out / "low_light@1" / "b" / "mine.txt").write_text("mine")  # keeps its folder alive
    second = run_perturb(src, out, conditions=parse_conditions("jpeg", [1]))
    assert set(_tree(out)) == ({r["output"] for r in second.rows}
                               | {"manifest.jsonl", "notes.txt", "low_light@1/b/mine.txt"})
    assert sorted(p.name for p in out.iterdir()) == ["jpeg@1", "low_light@1", "manifest.jsonl", "notes.txt"]
    assert not (out / "low_light@1" / "a").exists()  # emptied folders removed
    assert len(second.removed) == 12 and second.replaced == 4 + 1  # 4 images and the manifest
    assert second.removed_conditions == ["jpeg@2", "low_light@1", "low_light@2"]
    note = second.removal_note()
    assert note is not None
    assert "5 files replaced, 12 removed (conditions no longer asked for: jpeg@2, low_light@1, low_light@2)" in note
    manifest = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert [m["output"] for m in manifest] == [r["output"] for r in second.rows]


def test_a_folder_run_after_an_items_run_removes_the_earlier_items_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write_images(src)
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"id": "a", "question": "q", "reference": "r", "images": ["src/a/000.png"]}) + "\n")
    out = tmp_path / "out"
    run_perturb(items, out, conditions=parse_conditions("jpeg", [3]))
    assert (out / "items.jsonl").is_file()
    second = run_perturb(src, out, conditions=parse_conditions("jpeg", [3]))
    assert "items.jsonl" in second.removed and not (out / "items.jsonl").exists()
    assert set(_tree(out)) == {r["output"] for r in second.rows} | {"manifest.jsonl"}


def test_a_failed_rerun_leaves_the_earlier_output_intact(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write_images(src)
    out = tmp_path / "out"
    run_perturb(src, out, conditions=parse_conditions("jpeg,motion_blur", [1]))
    before = _tree(out)
    (src / "b" / "zz_bad.png").write_text("not an image")
    proc = _run_cli("perturb", src, "--ops", "low_light", "--out", out)
    assert proc.returncode == 2 and "zz_bad.png" in proc.stderr and "Traceback" not in proc.stderr
    assert _tree(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["jpeg@1", "manifest.jsonl", "motion_blur@1"]


def test_perturb_refuses_a_non_empty_folder_that_is_not_its_output(tmp_path: Path) -> None:
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("keep me")
    proc = _run_cli("perturb", SAMPLE_IMAGES, "--ops", "jpeg", "--out", out)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{out}: not empty and not a judgekit perturb output (no manifest.jsonl); choose an empty folder" \
        in " ".join(proc.stderr.split())
    assert [p.name for p in out.iterdir()] == ["chapter1.tex"]
    (out / "manifest.jsonl").write_text('{"rows": 3}\n')  # a manifest, not judgekit's
    with pytest.raises(JudgekitError, match="not a judgekit perturb manifest") as info:
        run_perturb(SAMPLE_IMAGES, out, conditions=parse_conditions("jpeg", [1]))
    assert info.value.line == 1
    escaping = {"output": "../chapter1.tex", "condition": "jpeg@1", "sha256_output": "0" * 64}
    (out / "manifest.jsonl").write_text(json.dumps(escaping) + "\n")
    with pytest.raises(JudgekitError, match="is not inside the folder"):
        run_perturb(SAMPLE_IMAGES, out, conditions=parse_conditions("jpeg", [1]))
    assert sorted(p.name for p in out.iterdir()) == ["chapter1.tex", "manifest.jsonl"]


def test_an_empty_folder_or_one_with_only_a_stale_staging_folder_is_used(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / ".judgekit-staging-old").mkdir(parents=True)
    res = run_perturb(SAMPLE_IMAGES, out, conditions=parse_conditions("jpeg", [1]))
    assert res.removal_note() is None and (out / "manifest.jsonl").is_file()
    assert (out / ".judgekit-staging-old").is_dir()  # maybe another run's: not ours to remove
    assert not os.listdir(out / ".judgekit-staging-old")
