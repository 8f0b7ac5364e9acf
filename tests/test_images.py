"""judgekit.io.images: formats and sizes read from headers, the pixel cap, and the image checks made when a
responses or items file is read (before any call is paid for)."""

from __future__ import annotations

import json
import os
import struct
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from judgekit.cli import main
from judgekit.io import images
from judgekit.io.dataio import read_items, read_responses
from judgekit.io.errors import JudgekitError
from judgekit.judging.prompt import image_data_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scripted_server import ScriptedServer

ROOT = Path(__file__).resolve().parents[1]
RUBRIC = ROOT / "rubrics" / "robustmad.yaml"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def giant_png(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A PNG of a few hundred bytes whose header says ``width`` x ``height`` (1-bit grey). Its image data is
    only the first rows (a decoder would allocate the whole image first, then find the data short)."""
    rows = b"".join(b"\x00" + bytes((width + 7) // 8) for _ in range(4))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(rows, 9))
                     + _chunk(b"IEND", b""))
    return path


def real_png(path: Path, width: int = 40, height: int = 33) -> Path:
    cv2.imwrite(str(path), np.full((height, width, 3), 120, np.uint8))
    return path


def symlink_loop(folder: Path, name: str = "loop.png") -> Path:
    a, b = folder / name, folder / f"other_{name}"
    a.symlink_to(b.name)
    b.symlink_to(a.name)
    return a


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def response(i: int, *images_: str, **fields: object) -> dict[str, object]:
    return {"id": f"q{i}", "model": "m", "question": f"Question {i}?", "reference": "Yes, a scratch.",
            "response": "Yes.", "images": list(images_), **fields}


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(images.ENV_MAX_IMAGE_PIXELS, raising=False)
    images.clear_cache()
    image_data_url.cache_clear()


# ------------------------------------------------------------------------------------------------ headers

@pytest.mark.parametrize("ext, fmt, params", [
    (".png", "PNG", []), (".jpg", "JPEG", []), (".jpg", "JPEG", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    (".bmp", "BMP", []), (".tif", "TIFF", []), (".webp", "WebP", [cv2.IMWRITE_WEBP_QUALITY, 80]),
    (".webp", "WebP", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossless: VP8L
])
def test_header_sizes_match_the_decoded_image(tmp_path: Path, ext: str, fmt: str, params: list[int]) -> None:
    for channels in (1, 3, 4) if ext != ".jpg" else (1, 3):
        shape = (37, 53) if channels == 1 else (37, 53, channels)
        img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        ok, buf = cv2.imencode(ext, img, params)
        assert ok
        path = tmp_path / f"x{channels}{ext}"
        path.write_bytes(buf.tobytes())
        info = images.probe_image(path)
        assert (info.format, info.width, info.height) == (fmt, 53, 37), (ext, channels)
        assert images.probe_bytes(path.read_bytes(), path) == info


def test_jpeg_size_found_past_large_metadata_segments(tmp_path: Path) -> None:
    _, buf = cv2.imencode(".jpg", np.zeros((40, 70, 3), np.uint8))
    data = buf.tobytes()
    app = b"\xff\xe1" + struct.pack(">H", 65535) + bytes(65533)  # a 64 KB EXIF-like segment, twice
    path = tmp_path / "meta.jpg"
    path.write_bytes(data[:2] + app + app + b"\xff\xff" + data[2:])  # and a fill byte
    assert images.probe_image(path) == images.ImageInfo("JPEG", 70, 40)
    assert cv2.imread(str(path)).shape == (40, 70, 3)


def test_gif_bigtiff_vp8x_and_core_bmp_headers() -> None:
    gif = b"GIF89a" + struct.pack("<HH", 300, 200) + b"\x00" * 8
    assert images.probe_bytes(gif, "a.gif") == images.ImageInfo("GIF", 300, 200)
    vp8x = b"RIFF" + b"\0" * 4 + b"WEBPVP8X" + struct.pack("<I", 10) + b"\0" * 4 + (4999).to_bytes(3, "little") \
        + (2999).to_bytes(3, "little")
    assert images.probe_bytes(vp8x, "a.webp") == images.ImageInfo("WebP", 5000, 3000)
    core = b"BM" + b"\0" * 12 + struct.pack("<IHH", 12, 64, 48) + b"\0" * 4
    assert images.probe_bytes(core, "a.bmp") == images.ImageInfo("BMP", 64, 48)
    top_down = b"BM" + b"\0" * 12 + struct.pack("<Iii", 40, 64, -48) + b"\0" * 28
    assert images.probe_bytes(top_down, "a.bmp") == images.ImageInfo("BMP", 64, 48)
    entries = [struct.pack("<HHQQ", 256, 16, 1, 77000), struct.pack("<HHQQ", 257, 4, 1, 5)]
    big = b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + struct.pack("<Q", 2) + b"".join(entries)
    assert images.probe_bytes(big, "a.tif") == images.ImageInfo("TIFF", 77000, 5)


@pytest.mark.parametrize("data, message", [
    (b"hello, I am text\n", "not an image file (PNG, JPEG, GIF, WebP, BMP or TIFF expected; it starts with text"),
    (b"%PDF-1.7\n%\xe2\xe3", "not an image file"),
    (b"\x89PNG\r\n\x1a\n", "truncated PNG header"),
    (b"\x89PNG\r\n\x1a\n" + _chunk(b"tEXt", b"0123456789abc"), "IHDR chunk must come first"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "truncated JPEG header"),
    (b"\xff\xd8\xff\xda\x00\x02", "no frame header"),
    (b"GIF89a\x01", "truncated GIF header"),
    (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 5, 8, 0, 0, 0, 0)), "gives no size"),
    (b"", "empty image file"),
])
def test_bad_headers_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(JudgekitError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        images.probe_bytes(data, "bad.png")
    assert info.value.path == "bad.png"


# ---------------------------------------------------------------------------------------------- pixel cap

def test_a_tiny_png_of_30000_x_30000_is_refused_before_decoding(tmp_path: Path) -> None:
    path = giant_png(tmp_path / "giant.png")
    assert path.stat().st_size < 1000
    with pytest.raises(JudgekitError) as info:
        images.probe_image(path)
    assert info.value.path == str(path)
    assert "30000 x 30000 = 900 megapixels, above the limit of 100 megapixels" in str(info.value)
    assert "JUDGEKIT_MAX_IMAGE_PIXELS" in str(info.value)


def test_the_cap_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = real_png(tmp_path / "a.png", 40, 33)  # 1320 pixels
    assert images.probe_image(path).pixels == 1320
    monkeypatch.setenv(images.ENV_MAX_IMAGE_PIXELS, "1320")
    images.probe_image(path)
    monkeypatch.setenv(images.ENV_MAX_IMAGE_PIXELS, "1_319")  # cached header, cap read again
    with pytest.raises(JudgekitError, match=r"above the limit of 0\.001319 megapixels"):
        images.probe_image(path)
    monkeypatch.setenv(images.ENV_MAX_IMAGE_PIXELS, "2e9")
    with pytest.raises(JudgekitError, match=r"JUDGEKIT_MAX_IMAGE_PIXELS.*positive whole number"):
        images.probe_image(path)
    monkeypatch.setenv(images.ENV_MAX_IMAGE_PIXELS, str(10**9))
    assert images.probe_image(giant_png(tmp_path / "giant.png")).pixels == 9 * 10**8


def test_image_data_url_refuses_an_image_above_the_cap(tmp_path: Path) -> None:
    with pytest.raises(JudgekitError, match="above the limit"):
        image_data_url(str(giant_png(tmp_path / "giant.png")))
    assert image_data_url(str(real_png(tmp_path / "ok.png"))).startswith("data:image/png;base64,")


# ------------------------------------------------------------------------------------ files and the cache

def test_file_problems_are_named(tmp_path: Path) -> None:
    assert images.image_problem(real_png(tmp_path / "ok.png")) is None
    assert images.image_problem(tmp_path / "missing.png") == "image file not found"
    assert images.image_problem(symlink_loop(tmp_path)) == "symbolic link loop (too many levels of symbolic links)"
    (tmp_path / "dangling.png").symlink_to("nowhere.png")
    assert images.image_problem(tmp_path / "dangling.png") == "broken symbolic link (its target is missing)"
    (tmp_path / "dir.png").mkdir()
    assert images.image_problem(tmp_path / "dir.png") == "is a folder, not an image file"
    (tmp_path / "empty.png").write_bytes(b"")
    assert images.image_problem(tmp_path / "empty.png") == "empty image file"
    os.mkfifo(tmp_path / "fifo.png")  # never opened (it would block)
    assert images.image_problem(tmp_path / "fifo.png") == "not a regular file (an image file expected)"


def test_an_unreadable_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = real_png(tmp_path / "locked.png")
    if os.geteuid() != 0:
        path.chmod(0)
        try:
            assert images.image_problem(path) == "cannot read image (permission denied)"
        finally:
            path.chmod(0o644)
    images.clear_cache()

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(images, "open", refuse, raising=False)  # root reads any file: refuse it here
    assert images.image_problem(path) == "cannot read image (permission denied)"


def test_headers_are_cached_by_path_mtime_and_size(tmp_path: Path) -> None:
    path = real_png(tmp_path / "a.png")
    for _ in range(500):
        images.probe_image(path)
    info = images._probe_cached.cache_info()
    assert (info.misses, info.hits) == (1, 499)
    path.write_text("now a text file")  # new size and mtime: read again
    with pytest.raises(JudgekitError, match="not an image file"):
        images.probe_image(path)


# ----------------------------------------------------------------------------- responses and items files

def test_a_text_file_named_png_is_refused_at_read_with_its_line(tmp_path: Path) -> None:
    ok = real_png(tmp_path / "ok.png")
    (tmp_path / "notes.png").write_text("these are my notes\n")
    p = write_jsonl(tmp_path / "r.jsonl", [response(1, ok.name), response(2, ok.name),
                                           response(3, ok.name, reference_images=["notes.png"])])
    with pytest.raises(JudgekitError) as info:
        read_responses(p)
    err = info.value
    assert (err.path, err.line, err.field) == (str(p), 3, "reference_images")
    assert str(err) == (f"{p}:3: field 'reference_images': not an image file (PNG, JPEG, GIF, WebP, BMP or TIFF "
                        "expected; it starts with text 'these are my not'): notes.png")
    assert read_responses(p, check_images=False)[2].reference_images == [str(tmp_path / "notes.png")]


@pytest.mark.parametrize("make, message", [
    (lambda d: symlink_loop(d, "img.png"), "symbolic link loop"),
    (lambda d: (d / "img.png").mkdir(), "is a folder, not an image file"),
    (lambda d: (d / "img.png").write_bytes(b""), "empty image file"),
    (lambda d: giant_png(d / "img.png"), "above the limit of 100 megapixels"),
    (lambda d: (d / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n"), "truncated PNG header"),
])
def test_bad_images_in_records_files_name_file_line_and_field(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    real_png(tmp_path / "ok.png")
    make(tmp_path)
    for reader, rows in ((read_responses, [response(1, "ok.png"), response(2, "img.png")]),
                         (read_items, [{"id": "a", "question": "q", "reference": "r", "images": ["ok.png"]},
                                       {"id": "b", "question": "q", "reference": "r", "images": ["img.png"]}])):
        p = write_jsonl(tmp_path / "records.jsonl", rows)
        with pytest.raises(JudgekitError) as info:
            reader(p)
        assert (info.value.path, info.value.line, info.value.field) == (str(p), 2, "images")
        assert message in str(info.value) and str(info.value).endswith(": img.png")
        assert reader(p, check_images=False)[1].images == [str(tmp_path / "img.png")]  # not checked: no error


def test_cli_judge_refuses_a_bad_image_before_any_call(tmp_path: Path, scripted_server: ScriptedServer,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    real_png(tmp_path / "ok.png")
    (tmp_path / "chart.png").write_text("id,value\n1,2\n")
    rows = [response(i, "ok.png") for i in range(1, 40)] + [response(40, "chart.png")]
    p = write_jsonl(tmp_path / "responses.jsonl", rows)
    store, out = tmp_path / "store.sqlite", tmp_path / "results.jsonl"
    code = main(["judge", str(p), "--rubric", str(RUBRIC), "--judge", "openai/scripted", "--api-base",
                 scripted_server.base_url, "--store", str(store), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{p}:40: field 'images': not an image file" in err and "chart.png" in err and "Traceback" not in err
    assert scripted_server.requests == 0
    assert not out.exists() and not store.exists()
