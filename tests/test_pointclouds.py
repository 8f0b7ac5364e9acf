"""Point-cloud items (:mod:`judgekit.io.pointclouds`): the readers agree on one synthetic cloud, the views are
sensible, deterministic and cached, bad clouds are errors naming the file and line, ``judgekit render`` works as a
command, judge requests carry the views, and call keys change only for items with clouds."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from plyfile import PlyData, PlyElement

from judgekit.generation.candidates import GEN_PROMPT_VERSION, PRESETS, generation_key, generation_messages
from judgekit.io import pointclouds as pc
from judgekit.io.dataio import read_items, read_responses
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Item, Response
from judgekit.judging.backends import JudgeSpec
from judgekit.judging.prompt import build_messages
from judgekit.judging.rubric import load_rubric
from judgekit.judging.store import _file_sha256, call_key


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "render-cache"
    monkeypatch.setenv(pc.ENV_RENDER_CACHE, str(cache))
    monkeypatch.delenv(pc.ENV_MAX_CLOUD_POINTS, raising=False)
    return cache


def _l_shape() -> np.ndarray:
    """An L-shaped block with a square hole through its upright arm; every coordinate a multiple of 0.25 (exact in
    float32 and in text)."""
    g = np.arange(0, 4, 0.25)
    pts = np.array([(x, y, z) for x in g for y in np.arange(0, 1, 0.25) for z in g if x < 1.5 or z < 1.5])
    hole = (np.abs(pts[:, 0] - 0.625) < 0.3) & (np.abs(pts[:, 2] - 3.0) < 0.4)
    return pts[~hole]


XYZ = _l_shape()
RGB = np.stack([(XYZ[:, 0] * 60).astype(np.uint8), (XYZ[:, 2] * 60).astype(np.uint8),
                np.full(len(XYZ), 200, np.uint8)], axis=1)


def _pcd_header(fields: str, size: str, typ: str, n: int, data: str) -> str:
    count = " ".join("1" for _ in fields.split())
    return (f"# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS {fields}\nSIZE {size}\nTYPE {typ}\n"
            f"COUNT {count}\nWIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {data}\n")


def _packed(rgb: np.ndarray) -> np.ndarray:
    return ((rgb[:, 0].astype(np.uint32) << 16) | (rgb[:, 1].astype(np.uint32) << 8) | rgb[:, 2]).view(np.float32)


def write_cloud(path: Path, xyz: np.ndarray, rgb: np.ndarray | None = None) -> Path:
    """``xyz`` (and colours) written in the format of ``path``'s name: .ply, _ascii.pcd / .pcd (binary), .xyz, .npy."""
    name = path.name
    if name.endswith(".ply"):
        cols = [("x", "f4"), ("y", "f4"), ("z", "f4")] + ([("red", "u1"), ("green", "u1"), ("blue", "u1")]
                                                          if rgb is not None else [])
        arr = np.empty(len(xyz), dtype=cols)
        for i, c in enumerate("xyz"):
            arr[c] = xyz[:, i]
        if rgb is not None:
            for i, c in enumerate(("red", "green", "blue")):
                arr[c] = rgb[:, i]
        PlyData([PlyElement.describe(arr, "vertex")]).write(str(path))
    elif name.endswith("_ascii.pcd"):
        fields, size, typ = ("x y z rgb", "4 4 4 4", "F F F U") if rgb is not None else ("x y z", "4 4 4", "F F F")
        rows = [" ".join(f"{v:g}" for v in p) + (f" {int(c[0]) << 16 | int(c[1]) << 8 | int(c[2])}"
                                                   if rgb is not None else "")
                for p, c in zip(xyz, rgb if rgb is not None else xyz, strict=True)]
        path.write_text(_pcd_header(fields, size, typ, len(xyz), "ascii") + "\n".join(rows) + "\n")
    elif name.endswith(".pcd"):
        if rgb is not None:
            data = np.empty(len(xyz), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<f4")])
            data["rgb"] = _packed(rgb)
        else:
            data = np.empty(len(xyz), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
        for i, c in enumerate("xyz"):
            data[c] = xyz[:, i]
        fields, size, typ = ("x y z rgb", "4 4 4 4", "F F F F") if rgb is not None else ("x y z", "4 4 4", "F F F")
        path.write_bytes(_pcd_header(fields, size, typ, len(xyz), "binary").encode() + data.tobytes())
    elif name.endswith(".xyz"):
        full = xyz if rgb is None else np.hstack([xyz, rgb])
        path.write_text("# x y z\n" + "\n".join(" ".join(f"{v:g}" for v in p) for p in full) + "\n")
    elif name.endswith(".npy"):
        np.save(path, xyz if rgb is None else np.hstack([xyz, rgb.astype(np.float64)]))
    return path


FORMAT_NAMES = ["c.ply", "c_ascii.pcd", "c.pcd", "c.xyz", "c.npy"]


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_every_format_loads_the_same_points(tmp_path: Path, name: str) -> None:
    cloud = pc.load_cloud(write_cloud(tmp_path / name, XYZ))
    assert cloud.xyz.dtype == np.float64 and cloud.rgb is None
    np.testing.assert_array_equal(cloud.xyz, XYZ)


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_every_format_loads_the_same_colours(tmp_path: Path, name: str) -> None:
    cloud = pc.load_cloud(write_cloud(tmp_path / name, XYZ, RGB))
    np.testing.assert_array_equal(cloud.xyz, XYZ)
    assert cloud.rgb is not None
    np.testing.assert_array_equal(cloud.rgb, RGB)


def test_non_finite_points_are_dropped(tmp_path: Path) -> None:
    bad = XYZ.copy()
    bad[0, 1] = np.nan
    bad[5, 2] = np.inf
    cloud = pc.load_cloud(write_cloud(tmp_path / "c.npy", bad))
    np.testing.assert_array_equal(cloud.xyz, np.delete(XYZ, [0, 5], axis=0))
    with pytest.raises(JudgekitError, match="empty point cloud") as err:
        pc.load_cloud(write_cloud(tmp_path / "nan.xyz", np.full((4, 3), np.nan)))
    assert err.value.path is not None and err.value.path.endswith("nan.xyz")


def test_downsampling_is_deterministic_and_bounded() -> None:
    big = pc.PointCloud(xyz=np.random.default_rng(1).normal(size=(50_000, 3)), rgb=None)
    a, b = pc.downsample(big), pc.downsample(big)
    assert len(a.xyz) == pc.MAX_RENDER_POINTS
    np.testing.assert_array_equal(a.xyz, b.xyz)
    small = pc.PointCloud(xyz=XYZ, rgb=None)
    assert pc.downsample(small) is small


def _pixels(png: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(png) as im:
        assert im.size == (512, 512)
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("colours", [None, RGB])
def test_views_are_sensible_distinct_deterministic_and_cached(tmp_path: Path, _cache: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              colours: np.ndarray | None) -> None:
    cloud = write_cloud(tmp_path / "c.ply", XYZ, colours)
    views = pc.view_paths(cloud)
    assert [v.name.rsplit("_", 1)[1] for v in views] == [f"{name}.png" for name in pc.VIEWS]
    assert all(v.parent.parent == _cache for v in views)
    images = [_pixels(v) for v in views]
    for img in images:
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 2  # drawn points, not a blank or one-colour image
        assert (img != 255).any(axis=2).mean() > 0.005
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert not np.array_equal(images[i], images[j])
    first = [v.read_bytes() for v in views]
    mtimes = [v.stat().st_mtime_ns for v in views]
    # the same bytes twice: rendered again from scratch in another cache folder ...
    again = pc.view_paths(cloud, tmp_path / "other-cache")
    assert [v.read_bytes() for v in again] == first
    # ... and a cache hit renders nothing

    def boom(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("rendered again despite the cache")

    monkeypatch.setattr(pc, "render_view", boom)
    assert pc.view_paths(cloud) == views
    assert [v.stat().st_mtime_ns for v in views] == mtimes


def test_rgb_cloud_is_drawn_in_its_own_colours(tmp_path: Path) -> None:
    rgb = np.tile(np.array([[255, 0, 0]], np.uint8), (len(XYZ), 1))
    front = _pixels(pc.view_paths(write_cloud(tmp_path / "red.xyz", XYZ, rgb))[0])
    drawn = front[(front != 255).any(axis=2)]
    assert len(drawn) and (drawn[:, 0] > 200).all() and np.median(drawn[:, 1]) < 20  # red (edges anti-aliased)


def _items_file(tmp_path: Path, cloud: str, *, name: str = "items.jsonl") -> Path:
    lines = [{"id": "ok", "question": "q?", "reference": "r"},
             {"id": "pc1", "question": "Any defect on the part?", "reference": "A hole.", "point_clouds": [cloud]}]
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


BAD_CLOUDS: list[tuple[str, bytes, str]] = [
    ("empty.ply", b"", "empty point cloud file"),
    ("bad.ply", b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nend_header\n1\nzz\n", "malformed PLY"),
    ("noply.ply", b"hello\n", "not a PLY file"),
    ("bad.xyz", b"0 0 0\n1 2\n", "line 2: expected 3 numbers"),
    ("nan.xyz", b"nan 0 0\n0 inf 0\n", "empty point cloud"),
    ("short.pcd", _pcd_header("x y z", "4 4 4", "F F F", 10, "binary").encode() + b"\0" * 20, "truncated PCD"),
    ("bad_ascii.pcd", _pcd_header("x y z", "4 4 4", "F F F", 2, "ascii").encode() + b"1 2 3\n1 2\n",
     "line 13: expected 3 values"),
    ("zip.pcd", _pcd_header("x y z", "4 4 4", "F F F", 1, "binary_compressed").encode() + b"\0" * 12,
     "binary_compressed"),
    ("shape.npy", b"", "N x 3 or N x 6"),  # written below as a 2 x 4 array
    ("garbage.npy", b"\x93NUMPY garbage", "not a readable .npy"),
    ("c.obj", b"v 0 0 0\n", "unknown point cloud type"),
    ("missing.ply", b"", "point cloud file not found"),
]


@pytest.mark.parametrize(("name", "data", "message"), BAD_CLOUDS)
def test_bad_clouds_name_file_line_and_cloud(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    target = tmp_path / name
    if name == "shape.npy":
        np.save(target, np.zeros((2, 4)))
    elif name != "missing.ply":
        target.write_bytes(data)
    items = _items_file(tmp_path, name)
    with pytest.raises(JudgekitError) as err:
        read_items(items)
    text = str(err.value)
    assert text.startswith(f"{items}:2: field 'point_clouds': "), text
    assert message in text and name in text


def test_huge_cloud_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FORMAT_NAMES:
        write_cloud(tmp_path / name, XYZ)
    monkeypatch.setenv(pc.ENV_MAX_CLOUD_POINTS, "100")
    for name in FORMAT_NAMES:
        with pytest.raises(JudgekitError, match=r"above the limit of 100|more than 100 points") as err:
            read_items(_items_file(tmp_path, name))
        assert "items.jsonl:2: field 'point_clouds'" in str(err.value) and name in str(err.value)
    monkeypatch.setenv(pc.ENV_MAX_CLOUD_POINTS, "lots")
    with pytest.raises(JudgekitError, match="positive whole number"):
        read_items(_items_file(tmp_path, "c.ply"))


def test_csv_items_resolve_cloud_paths(tmp_path: Path) -> None:
    write_cloud(tmp_path / "a.xyz", XYZ)
    write_cloud(tmp_path / "b.npy", XYZ)
    (tmp_path / "items.csv").write_text("id,question,reference,point_clouds\nx,q?,r,a.xyz|b.npy\n")
    (item,) = read_items(tmp_path / "items.csv")
    assert item.point_clouds == [str((tmp_path / "a.xyz").resolve()), str((tmp_path / "b.npy").resolve())]


def _run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run([sys.executable, "-m", "judgekit.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_render_command(tmp_path: Path) -> None:
    (tmp_path / "clouds").mkdir()
    write_cloud(tmp_path / "clouds" / "part.pcd", XYZ)
    items = _items_file(tmp_path, "clouds/part.pcd")
    out = tmp_path / "views"
    res = _run_cli("render", items, "--out", out)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (out / "pc1").iterdir()) == sorted(f"part_{v}.png" for v in pc.VIEWS)
    assert "4 views of 1 point clouds" in res.stdout
    # bad input: exit 2, a clear message, no traceback, nothing written
    (tmp_path / "broken.xyz").write_text("1 2 3\nnot a point\n")
    bad_out = tmp_path / "bad-views"
    res = _run_cli("render", _items_file(tmp_path, "broken.xyz", name="bad.jsonl"), "--out", bad_out)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "bad.jsonl:2: field 'point_clouds'" in res.stderr and "broken.xyz" in res.stderr
    assert not bad_out.exists()


def test_judge_and_generation_requests_carry_the_views(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (8, 8), "gray").save(tmp_path / "query.png")
    cloud = write_cloud(tmp_path / "part.ply", XYZ)
    (tmp_path / "responses.jsonl").write_text(json.dumps(
        {"id": "a", "model": "m", "question": "Defect?", "reference": "A hole.", "response": "A hole.",
         "images": ["query.png"], "point_clouds": ["part.ply"]}) + "\n")
    (resp,) = read_responses(tmp_path / "responses.jsonl")
    rubric = load_rubric("general")
    parts = build_messages(rubric, resp)[-1]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(urls) == 1 + len(pc.VIEWS) and all(u.startswith("data:image/png;base64,") for u in urls)
    texts = [p["text"] for p in parts if p["type"] == "text"]
    assert texts[-1] == pc.view_label(str(cloud.resolve()))
    # the query image first, then the cloud's views
    assert parts.index(next(p for p in parts if p["type"] == "image_url")) < parts.index(
        next(p for p in parts if p.get("text") == texts[-1]))
    item = Item(**{k: v for k, v in resp.model_dump().items() if k not in ("model", "response")})
    gen = generation_messages(item, PRESETS["plain"])[0]["content"]
    assert sum(p["type"] == "image_url" for p in gen) == 1 + len(pc.VIEWS) and gen[-1]["type"] == "text"
    assert generation_messages(item, PRESETS["plain"], images=False)[0]["content"] == item.question


PINNED = "e00359a3bf0a43e94be0c44f2e0fd382fc9d9675c5f80855b164c5b4b7474155"  # tests/test_call_key_stable.py


def _key(resp: Response) -> str:
    return call_key(response=resp, judge_identity=JudgeSpec(model="openai/judge").identity(),
                    rubric_fingerprint="f" * 64, rubric_version="1.0", prompt_version="1", sample=0)


def _old_generation_key(item: Item, spec: JudgeSpec) -> str:
    """generation_key as it was before point clouds (plain preset, images on, no shots)."""
    doc = {"kind": "generate", "p": GEN_PROMPT_VERSION, "preset": "plain", "instruction": None, "m": spec.model,
           "t": 0.0, "mt": 512, "seed": spec.seed, "extra": spec.extra, "id": item.id, "q": item.question,
           "opts": item.options, "cond": item.condition, "images": True, "img": [], "rimg": []}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def test_keys_unchanged_without_clouds_and_follow_cloud_content(tmp_path: Path) -> None:
    base: dict[str, Any] = {"id": "q1", "question": "Is there a defect?", "reference": "No.", "model": "m",
                            "response": "Yes."}
    assert _key(Response(**base)) == PINNED
    cloud = write_cloud(tmp_path / "c.npy", XYZ)
    with_cloud = Response(**base, point_clouds=[str(cloud)])
    first = _key(with_cloud)
    assert first != PINNED
    assert _key(with_cloud) == first
    write_cloud(cloud, XYZ + 0.25)
    _file_sha256.cache_clear()  # file hashes are cached by path within a process, as for images: a new run
    assert _key(with_cloud) != first

    spec = JudgeSpec(model="openai/m")
    item = Item(id="q1", question="Is there a defect?", reference="No.")
    gen = generation_key(item, spec, PRESETS["plain"], temperature=0.0, max_tokens=512, images=True)
    assert gen == _old_generation_key(item, spec)
    item_pc = item.model_copy(update={"point_clouds": [str(cloud)]})
    gen_pc = generation_key(item_pc, spec, PRESETS["plain"], temperature=0.0, max_tokens=512, images=True)
    assert gen_pc != gen
    write_cloud(cloud, XYZ)
    _file_sha256.cache_clear()
    assert generation_key(item_pc, spec, PRESETS["plain"], temperature=0.0, max_tokens=512, images=True) != gen_pc
    # without images the views are not sent, so the clouds do not count
    assert generation_key(item_pc, spec, PRESETS["plain"], temperature=0.0, max_tokens=512, images=False) == \
        generation_key(item, spec, PRESETS["plain"], temperature=0.0, max_tokens=512, images=False)


def test_in_memory_responses_resolve_and_check_their_clouds(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``judgekit.judge`` on dicts: cloud paths are resolved against the working folder and read, like images."""
    from judgekit.api.judging import responses_of

    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "part.npy", _l_shape())
    (tmp_path / "bad.xyz").write_text("0 0 0\n1 2\n")
    row = {"id": "p", "question": "q?", "reference": "r", "model": "m", "response": "a", "point_clouds": ["part.npy"]}
    (got,) = responses_of([row])
    assert got.point_clouds == [str(tmp_path / "part.npy")]
    with pytest.raises(JudgekitError) as err:
        responses_of([{**row, "point_clouds": ["bad.xyz"]}])
    assert "responses[0]" in str(err.value) and "point_clouds" in str(err.value) and "line 2" in str(err.value)


def test_perturbed_items_keep_their_clouds_relative(tmp_path: Path) -> None:
    """``judgekit perturb`` on an items file writes the clouds' paths relative to the new items file."""
    import cv2

    from judgekit.perturbation.files import parse_conditions, run_perturb

    (tmp_path / "src").mkdir()
    cv2.imwrite(str(tmp_path / "src" / "a.png"), np.full((64, 64, 3), 120, np.uint8))
    np.save(tmp_path / "src" / "part.npy", _l_shape())
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"id": "i", "question": "q?", "reference": "r", "images": ["src/a.png"],
                                 "point_clouds": ["src/part.npy"]}) + "\n")
    out = tmp_path / "out"
    run_perturb(items, out, conditions=parse_conditions("motion_blur", [2]), threads=1)
    written = [json.loads(x) for x in (out / "items.jsonl").read_text().splitlines()]
    assert len(written) == 2
    for w in written:
        assert w["point_clouds"] == [os.path.relpath(tmp_path / "src" / "part.npy", out)]
    again = read_items(out / "items.jsonl")  # resolves and reads them from the new file's folder
    assert all(Path(it.point_clouds[0]) == (tmp_path / "src" / "part.npy").resolve() for it in again)
