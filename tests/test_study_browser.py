"""The study web app end to end in headless Chromium against a real uvicorn server: a rater rates by mouse and by
keyboard, revises, flags an item unratable, rates one more with JavaScript off; the store holds exactly what
was entered, with the revision in the history; no console error and no alert from the item holding script.
Screenshots of the rating page and the admin page are saved (in ``$STUDY_SCREENSHOTS`` when set)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from test_report_html import _chromium
from test_study_app import KEYS, make_study, start_server, stop_server

from human_study.store import StudyStore


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from test_study_app import free_port

    d = tmp_path_factory.mktemp("study_browser")
    study = make_study(d / "study", n_raters=2, n_items=5, xss=True)
    port = free_port()
    log = d / "server.log"
    proc = start_server(study["folder"], port, log)
    try:
        yield {**study, "base": f"http://127.0.0.1:{port}", "log": log, "dir": d}
    finally:
        stop_server(proc)


def _label(page: Any, key: str, value: int) -> Any:
    return page.locator(f'.crit[data-key="{key}"] label.lvl').nth(value - 1)


@pytest.mark.slow
def test_rate_in_the_browser(served: dict[str, Any]) -> None:
    exe = _chromium()
    from playwright.sync_api import sync_playwright

    base, tok = served["base"], served["tokens"]["rater1"]
    assigns = served["assignments"]["rater1"]
    shots = Path(os.environ.get("STUDY_SCREENSHOTS") or served["dir"])
    shots.mkdir(parents=True, exist_ok=True)
    seen: dict[str, list[Any]] = {"console": [], "errors": [], "dialogs": [], "requests": [], "failed": []}
    mouse = {"technical_accuracy": 2, "comprehensiveness": 3, "relevance": 5, "style_and_clarity": 1, "overall": 2}
    keyboard = {"technical_accuracy": 4, "comprehensiveness": 3, "relevance": 5, "style_and_clarity": 2,
                "overall": 4}
    revised = {**mouse, "overall": 1, "relevance": 4}
    nojs = {k: 5 for k in KEYS}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.on("console", lambda m: seen["console"].append((m.type, m.text)))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("dialog", lambda dlg: (seen["dialogs"].append(dlg.message), dlg.dismiss()))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.on("requestfailed", lambda r: seen["failed"].append((r.url, r.failure)))

            # the home page, then item 1 (the one holding script) rated with the mouse
            page.goto(f"{base}/r/{tok}")
            assert "0 / 7 rated" in page.inner_text(".bar .prog")
            page.click("text=Start with item 1")
            assert page.url == f"{base}/r/{tok}/i/{assigns[0].slot}"
            assert "<script>alert(1)</script>" in page.inner_text(".question .q")
            assert "<img src=x onerror=alert(1)>" in page.inner_text(".rated")
            imgs = page.evaluate("Array.from(document.querySelectorAll('.images img')).map(i => i.naturalWidth)")
            assert imgs == [128, 128]
            page.click(".images figure:nth-child(1) a")  # zoom
            assert page.locator("#zoom0").is_visible()
            page.click("#zoom0 a")
            assert not page.locator("#zoom0").is_visible()
            for k, v in mouse.items():
                _label(page, k, v).click()
            assert page.locator(".crit.current").get_attribute("data-key") == "overall"
            page.fill("textarea[name=comment]", "first <b>look</b>")
            page.screenshot(path=str(shots / "study_rating_page.png"), full_page=True)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/r/{tok}/i/{assigns[1].slot}?saved=1")

            # item 2 by keyboard: digits score the highlighted criterion and move on, Enter saves
            assert page.locator(".crit.current").get_attribute("data-key") == "technical_accuracy"
            page.wait_for_timeout(1100)  # some time on the page
            for k in KEYS:
                page.keyboard.press(str(keyboard[k]))
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/r/{tok}/i/{assigns[2].slot}?saved=2")

            # revise item 1: the latest rating comes back filled in
            page.goto(f"{base}/r/{tok}")
            page.click("ol.tiles li:nth-child(1) a")
            assert "revising" in page.inner_text(".bar")
            for k, v in mouse.items():
                assert page.locator(f'input[name="score_{k}"][value="{v}"]').is_checked()
            assert page.input_value("textarea[name=comment]") == "first <b>look</b>"
            _label(page, "overall", 1).click()
            _label(page, "relevance", 4).click()
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/r/{tok}/i/{assigns[2].slot}?saved=1")

            # item 3 flagged unratable: a missing reason is refused, then given
            page.check("#unratable")
            page.evaluate("document.getElementById('reason').required = false")  # let the server refuse it
            page.click("button[type=submit]")
            assert "say why" in page.inner_text(".error").lower()
            page.check("#unratable")
            page.fill("#reason", "the image is cut off")
            page.press("#reason", "Enter")
            page.wait_for_url(f"{base}/r/{tok}/i/{assigns[3].slot}?saved=3")

            # item 4 with JavaScript off: the plain form works
            ctx = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 1400})
            nj = ctx.new_page()
            nj.goto(f"{base}/r/{tok}/i/{assigns[3].slot}")
            for k, v in nojs.items():
                _label(nj, k, v).click()
            nj.click("button[type=submit]")
            nj.wait_for_url(f"{base}/r/{tok}/i/{assigns[4].slot}?saved=4")
            ctx.close()

            page.goto(f"{base}/a/{served['admin']}")
            assert "progress per rater" in page.inner_text("body").lower()
            page.screenshot(path=str(shots / "study_admin_page.png"), full_page=True)
            page.goto(f"{base}/r/{tok}")
            page.screenshot(path=str(shots / "study_home_page.png"), full_page=True)
        finally:
            browser.close()

    assert seen["errors"] == [], seen["errors"]
    # the one deliberate refusal (the unratable flag without a reason) is the only message
    refused = "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    assert [c for c in seen["console"] if c[0] in ("error", "warning")] == [("error", refused)]
    assert seen["dialogs"] == []
    # the icon may be cut off by a quick navigation; nothing else may fail
    assert [f for f in seen["failed"] if not f[0].endswith("/favicon.svg")] == []
    assert not any(u.rstrip("/").endswith("/x") for u in seen["requests"])
    for name in ("study_rating_page.png", "study_admin_page.png"):
        assert (shots / name).stat().st_size > 20_000

    with StudyStore(served["folder"]) as s:
        latest = s.latest("rater1")
        h0 = s.history(assigns[0].slot)
    assert set(latest) == {a.slot for a in assigns[:4]}
    assert latest[assigns[0].slot].scores == revised
    assert latest[assigns[0].slot].comment == "first <b>look</b>"
    assert latest[assigns[1].slot].scores == keyboard
    r2 = latest[assigns[2].slot]
    assert r2.unratable and r2.scores == {} and r2.reason == "the image is cut off"
    assert latest[assigns[3].slot].scores == nojs
    assert [r.scores for r in h0] == [mouse, revised]
    assert latest[assigns[1].slot].seconds is not None and latest[assigns[1].slot].seconds >= 1.0
    assert latest[assigns[3].slot].seconds is not None  # measured by the server without JavaScript

    # the export (what judgekit agree reads) holds exactly what was entered: the latest scores of the rated main
    # items, one row per criterion; the unratable item only in the unratable file
    import csv

    from human_study.exchange import export_ratings

    out = served["folder"].parent / "browser_ratings.csv"
    export_ratings(served["folder"], out)
    with StudyStore(served["folder"]) as s:
        items = {i.item_key: i for i in s.items()}
    entered = {assigns[0].slot: revised, assigns[1].slot: keyboard, assigns[3].slot: nojs}
    expected = {(items[a.item_key].id, k, str(v)) for a in assigns[:4] if a.slot in entered and a.kind == "main"
                for k, v in entered[a.slot].items()}
    with out.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["rater"] == "rater1"]
    assert {(r["id"], r["criterion"], r["score"]) for r in rows} == expected
    assert {r["revisions"] for r in rows if r["id"] == items[assigns[0].item_key].id} == {"2"}
    with out.with_name("browser_ratings_unratable.csv").open(newline="", encoding="utf-8") as fh:
        flagged = [r for r in csv.DictReader(fh) if r["rater"] == "rater1"]
    assert [(r["id"], r["reason"]) for r in flagged] == [(items[assigns[2].item_key].id, "the image is cut off")]


@pytest.mark.slow
def test_real_server_refuses_large_bodies(served: dict[str, Any]) -> None:
    """Through uvicorn: a body over the limit gets 413 whether announced (Content-Length) or streamed (chunked),
    nothing is stored, and the server keeps serving."""
    import httpx

    base, tok = served["base"], served["tokens"]["rater2"]
    slot = served["assignments"]["rater2"][0].slot
    with StudyStore(served["folder"]) as s:
        before = len(s.history(slot))
    with httpx.Client(base_url=base, timeout=10) as c:
        page = c.get(f"/r/{tok}/i/{slot}").text
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        data = {f"score_{k}": "3" for k in KEYS}
        r = c.post(f"/r/{tok}/i/{slot}", data={**data, "csrf": csrf, "comment": "x" * 100_000})
        assert r.status_code == 413

        def chunks() -> Iterator[bytes]:
            yield f"csrf={csrf}&comment=".encode()
            for _ in range(50):
                yield b"y" * 4096

        r = c.post(f"/r/{tok}/i/{slot}", content=chunks(),
                   headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413
        assert r.headers["x-frame-options"] == "DENY"
    with httpx.Client(base_url=base, timeout=10) as c:
        assert c.get(f"/r/{tok}").status_code == 200
    with StudyStore(served["folder"]) as s:
        assert len(s.history(slot)) == before
    out = served["log"].read_text(errors="replace")
    for token in [*served["tokens"].values(), served["admin"]]:
        assert token not in out
