"""The study web app (human_study.app) through Starlette's TestClient: isolation of raters, escaping, CSRF, body
limits, score validation, the rating history, images and the security headers. ``make_study`` (a small study
built straight with StudyStore, with PNGs in STUDY/images/) is shared with the browser and load tests."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("jinja2")
pytest.importorskip("multipart")

import judgekit.sample_data as sample_data
from human_study.store import Assignment, Item, StudyStore, new_key
from judgekit.judging.rubric import load_rubric

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"
KEYS = ["technical_accuracy", "comprehensiveness", "relevance", "style_and_clarity", "overall"]


def make_client(app: Any, **kw: Any) -> Any:
    """Starlette's TestClient for ``app`` (imported here: it warns about its httpx dependency on import)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient as _TestClient

        return _TestClient(app, **kw)


def _png(path: Path, seed: int) -> None:
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    img = np.full((96, 128, 3), 235, np.uint8)
    color = tuple(int(c) for c in rng.integers(40, 200, 3))
    cv2.circle(img, (64, 48), 30, color, -1)
    cv2.line(img, (40, 30), (80 + seed % 20, 60), (20, 20, 20), 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


def make_study(folder: str | Path, *, n_raters: int = 2, n_items: int = 6, xss: bool = False, shared: bool = True,
               repeats: bool = True, gold: bool = True) -> dict[str, Any]:
    """A study in ``folder``: ``n_items`` answers (two models, a judge verdict each, one query PNG and on every
    other item a reference PNG), ``n_raters`` raters who each rate every item (``shared``) or their own share,
    plus (``repeats``) one repeat of their first item and (``gold``) one gold item. ``xss`` puts script in the
    first item's question, reference and answer. Returns the tokens by rater, the admin token, the items and
    the assignments by rater."""
    folder = Path(folder)
    store = StudyStore(folder, create=True)
    try:
        store.set_rubric(load_rubric(sample_data.rubric_path("robustmad")))
        items = []
        for i in range(n_items + (1 if gold else 0)):
            key = new_key()
            q = f"images/{key}_q.png"
            _png(folder / q, i)
            refs: tuple[str, ...] = ()
            if i % 2 == 0:
                refs = (f"images/{key}_r.png",)
                _png(folder / refs[0], 100 + i)
            is_gold = gold and i == n_items
            question = f"Is there any defect on part {i}? If so, where?"
            reference = f"Yes, a scratch at the top-right of part {i}."
            response = f"The part {i} has a scratch near its top-right edge."
            if xss and i == 0:
                question += " " + XSS_SCRIPT
                reference += " " + XSS_IMG
                response = XSS_SCRIPT + " " + XSS_IMG + " " + response
            items.append(Item(item_key=key, id=f"part-{i}", model="secret-model-A" if i % 2 else "secret-model-B",
                              condition="clean", category="defect", judge="judge-x", question=question,
                              reference=reference, response=response, images=(q,), reference_images=refs,
                              judge_scores={k: 4 for k in KEYS}, judge_overall=float(1 + i % 5),
                              judge_passed=True, gold={k: 4 for k in KEYS} if is_gold else None))
        store.add_items(items)
        main_items = items[:n_items]
        tokens: dict[str, str] = {}
        assigns: dict[str, list[Assignment]] = {}
        for r in range(n_raters):
            name = f"rater{r + 1}"
            tokens[name] = store.add_rater(name)
            mine = main_items if shared else main_items[r::n_raters]
            queue = [(it, "main") for it in mine]
            if repeats and mine:
                queue.append((mine[0], "repeat"))
            if gold:
                queue.insert(min(2, len(queue)), (items[-1], "gold"))
            assigns[name] = [Assignment(slot=new_key(), rater=name, position=p, item_key=it.item_key, kind=kind)
                             for p, (it, kind) in enumerate(queue)]
            store.add_assignments(assigns[name])
        admin = store.new_admin_token()
    finally:
        store.close()
    return {"folder": folder, "tokens": tokens, "admin": admin, "items": items, "assignments": assigns}


# ---- helpers ----------------------------------------------------------------------------------------------------
@pytest.fixture
def study(tmp_path: Path) -> dict[str, Any]:
    return make_study(tmp_path / "study", n_raters=2, n_items=5, xss=True)


@pytest.fixture
def client(study: dict[str, Any]) -> Any:
    from human_study.app import create_app

    with make_client(create_app(study["folder"]), follow_redirects=False) as c:
        yield c


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, "no csrf field"
    return m.group(1)


def _issued(html: str) -> str:
    m = re.search(r'name="issued" value="([^"]+)"', html)
    assert m
    return m.group(1)


def _good(csrf: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {f"score_{k}": "4" for k in KEYS}
    data.update(csrf=csrf, comment="fine", elapsed="12.5")
    data.update(extra)
    return data


def _history(study: dict[str, Any]) -> list[Any]:
    with StudyStore(study["folder"]) as s:
        return s.history()


def _slot(study: dict[str, Any], rater: str, i: int = 0) -> str:
    return str(study["assignments"][rater][i].slot)


# ---- isolation ---------------------------------------------------------------------------------------------------
def test_rater_pages_open_with_own_token(client: Any, study: dict[str, Any]) -> None:
    tok = study["tokens"]["rater1"]
    home = client.get(f"/r/{tok}")
    assert home.status_code == 200
    assert "0</b> / 7 rated" in home.text
    for a in study["assignments"]["rater1"]:
        assert f"/r/{tok}/i/{a.slot}" in home.text
    for a in study["assignments"]["rater2"]:
        assert a.slot not in home.text
    page = client.get(f"/r/{tok}/i/{_slot(study, 'rater1')}")
    assert page.status_code == 200
    assert "Ground-truth answer" in page.text and "Answer to rate" in page.text
    for k in ("Technical accuracy", "Comprehensiveness", "Relevance", "Style and clarity", "Overall"):
        assert k in page.text
    # the level descriptors are on the page
    assert "Wrong on the main point" in page.text and "Excellent - right, complete and clearly stated." in page.text


def test_isolation_between_raters(client: Any, study: dict[str, Any]) -> None:
    a, b = study["tokens"]["rater1"], study["tokens"]["rater2"]
    slot_b = _slot(study, "rater2")
    r = client.get(f"/r/{a}/i/{slot_b}")
    assert r.status_code == 404
    page = client.get(f"/r/{a}/i/{_slot(study, 'rater1')}")
    r = client.post(f"/r/{a}/i/{slot_b}", data=_good(_csrf(page.text)))
    assert r.status_code == 404
    assert client.get(f"/r/{a}/img/{slot_b}/0").status_code == 404
    # guessed tokens and slots, and the same page for each
    own = _slot(study, "rater1")
    other_end = "y" if a.endswith("x") else "x"  # a token one character off (a random token may end in x)
    bad = [f"/r/{'A' * 32}", f"/r/{a[:-1]}{other_end}", f"/r/{a}/i/{'B' * 16}", f"/r/{a}/i/%2e%2e",
           f"/r/{a}/img/%2e%2e/0", "/r/x", f"/a/{a}", f"/a/{'C' * 32}", f"/a/{'C' * 32}/export.csv",
           f"/a/{b}/export.csv", "/",
           "/study.sqlite", "/static/../study.sqlite", f"/r/{a}/img/{own}/9", f"/r/{a}/img/{own}/-1"]
    bodies = set()
    for url in bad:
        r = client.get(url)
        assert r.status_code == 404, url
        bodies.add(r.text)
    assert len(bodies) == 1  # no difference between "no such rater" and "bad token"
    assert _history(study) == []


def test_admin_needs_admin_token(client: Any, study: dict[str, Any]) -> None:
    adm = study["admin"]
    r = client.get(f"/a/{adm}")
    assert r.status_code == 200
    assert "Progress per rater" in r.text and "rater1" in r.text and "rater2" in r.text
    assert client.get(f"/a/{adm}/export.csv").status_code == 200
    assert client.get(f"/r/{adm}").status_code == 404
    assert client.get(f"/a/{study['tokens']['rater1']}").status_code == 404


def test_blind_no_model_judge_or_id(client: Any, study: dict[str, Any]) -> None:
    tok = study["tokens"]["rater1"]
    texts = [client.get(f"/r/{tok}").text]
    for a in study["assignments"]["rater1"]:
        texts.append(client.get(f"/r/{tok}/i/{a.slot}").text)
    for t in texts:
        for secret in ("secret-model", "judge-x", "part-", "item_key", "gold", "repeat"):
            assert secret not in t, secret
        for it in study["items"]:
            assert it.item_key not in t


# ---- escaping -------------------------------------------------------------------------------------------------------
def test_xss_is_escaped(client: Any, study: dict[str, Any]) -> None:
    tok = study["tokens"]["rater1"]
    slot = _slot(study, "rater1")  # item 0 holds the script
    page = client.get(f"/r/{tok}/i/{slot}").text
    assert XSS_SCRIPT not in page and XSS_IMG not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    r = client.post(f"/r/{tok}/i/{slot}", data=_good(_csrf(page), comment=XSS_SCRIPT + XSS_IMG))
    assert r.status_code == 303
    page = client.get(f"/r/{tok}/i/{slot}").text  # the comment comes back pre-filled
    assert XSS_SCRIPT not in page and XSS_IMG not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3
    # a rejected submission re-renders the posted text escaped too
    r = client.post(f"/r/{tok}/i/{slot}", data={**_good(_csrf(page), reason=XSS_IMG), "score_overall": "9"})
    assert r.status_code == 422 and XSS_IMG not in r.text
    admin = client.get(f"/a/{study['admin']}").text
    assert XSS_SCRIPT not in admin and XSS_IMG not in admin


# ---- CSRF, body size, validation -----------------------------------------------------------------------------------
def test_csrf_required(client: Any, study: dict[str, Any]) -> None:
    tok = study["tokens"]["rater1"]
    slot = _slot(study, "rater1")
    page = client.get(f"/r/{tok}/i/{slot}").text
    csrf = _csrf(page)
    data = _good(csrf)
    del data["csrf"]
    assert client.post(f"/r/{tok}/i/{slot}", data=data).status_code == 403
    assert client.post(f"/r/{tok}/i/{slot}", data=_good("0" * 64)).status_code == 403
    assert client.post(f"/r/{tok}/i/{slot}", data=_good(csrf[:-1])).status_code == 403
    # another rater's csrf token does not fit
    tok2 = study["tokens"]["rater2"]
    other = _csrf(client.get(f"/r/{tok2}/i/{_slot(study, 'rater2')}").text)
    assert other != csrf
    assert client.post(f"/r/{tok}/i/{slot}", data=_good(other)).status_code == 403
    assert _history(study) == []
    assert client.post(f"/r/{tok}/i/{slot}", data=_good(csrf)).status_code == 303
    assert len(_history(study)) == 1


def test_oversized_body_413(client: Any, study: dict[str, Any]) -> None:
    tok = study["tokens"]["rater1"]
    slot = _slot(study, "rater1")
    csrf = _csrf(client.get(f"/r/{tok}/i/{slot}").text)
    r = client.post(f"/r/{tok}/i/{slot}", data=_good(csrf, comment="x" * 70_000))
    assert r.status_code == 413
    # streamed without a Content-Length: counted as it arrives

    def chunks() -> Any:
        yield f"csrf={csrf}&score_overall=3&comment=".encode()
        for _ in range(40):
            yield b"y" * 4096

    r = client.post(f"/r/{tok}/i/{slot}", content=chunks(),
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert _history(study) == []
    # a comment over the store's limit (but within the body limit) is refused, not cut
    r = client.post(f"/r/{tok}/i/{slot}", data=_good(csrf, comment="z" * 4001))
    assert r.status_code == 422
    assert _history(study) == []


@pytest.mark.parametrize("bad", [
    {"score_overall": "6"}, {"score_overall": "0"}, {"score_relevance": "-1"}, {"score_overall": "3.5"},
    {"score_overall": "abc"}, {"score_overall": ""}, {"score_comprehensiveness": None}, {"score_overall": "1e1"},
    {"score_overall": "٣"}, {"score_overall": "²"}, {"score_overall": "99999999999"},
])
def test_bad_scores_rejected(client: Any, study: dict[str, Any], bad: dict[str, Any]) -> None:
    tok = study["tokens"]["rater1"]
    slot = _slot(study, "rater1")
    csrf = _csrf(client.get(f"/r/{tok}/i/{slot}").text)
    data = _good(csrf)
    for k, v in bad.items():
        if v is None:
            del data[k]
        else:
            data[k] = v
    r = client.post(f"/r/{tok}/i/{slot}", data=data)
    assert 400 <= r.status_code < 500
    assert r.status_code == 422
    assert "nothing was saved" in r.text
    assert 'class="crit' in r.text and " bad" in r.text
    # the other answers stay filled in
    assert re.search(r'name="score_technical_accuracy" value="4" checked', r.text)
    assert _history(study) == []


def test_unknown_fields_and_files(client: Any, study: dict[str, Any]) -> None:
    tok = study["tokens"]["rater1"]
    slot = _slot(study, "rater1")
    csrf = _csrf(client.get(f"/r/{tok}/i/{slot}").text)
    r = client.post(f"/r/{tok}/i/{slot}", data=_good(csrf), files={"f": ("a.txt", b"hello")})
    assert r.status_code == 400
    assert _history(study) == []


def test_revision_keeps_history(client: Any, study: dict[str, Any]) -> None:
    tok = study["tokens"]["rater1"]
    assigns = study["assignments"]["rater1"]
    slot = assigns[0].slot
    page = client.get(f"/r/{tok}/i/{slot}").text
    r = client.post(f"/r/{tok}/i/{slot}", data=_good(_csrf(page), issued=_issued(page)))
    assert r.status_code == 303
    assert r.headers["location"] == f"/r/{tok}/i/{assigns[1].slot}?saved=1"
    page = client.get(f"/r/{tok}/i/{slot}").text
    assert "revising" in page
    assert re.search(r'name="score_overall" value="4" checked', page)
    r = client.post(f"/r/{tok}/i/{slot}", data=_good(_csrf(page), score_overall="2", comment="changed"))
    assert r.status_code == 303
    with StudyStore(study["folder"]) as s:
        h = s.history(slot)
        latest = s.latest("rater1")
    assert [x.revision for x in h] == [1, 2]
    assert h[0].scores["overall"] == 4 and h[1].scores["overall"] == 2
    assert latest[slot].scores["overall"] == 2 and latest[slot].comment == "changed"
    assert h[0].seconds is not None and 0 <= h[0].seconds <= 12.5
    page = client.get(f"/r/{tok}/i/{slot}").text
    assert re.search(r'name="score_overall" value="2" checked', page)
    assert ">changed</textarea>" in page


def test_time_measured_without_js(client: Any, study: dict[str, Any]) -> None:
    tok = study["tokens"]["rater1"]
    slot = _slot(study, "rater1")
    page = client.get(f"/r/{tok}/i/{slot}").text
    data = _good(_csrf(page), issued=_issued(page))
    del data["elapsed"]
    assert client.post(f"/r/{tok}/i/{slot}", data=data).status_code == 303
    # a forged stamp or a claim beyond the server's clock is not believed
    data = _good(_csrf(page), issued="1000.deadbeef", elapsed="99999999")
    assert client.post(f"/r/{tok}/i/{slot}", data=data).status_code == 303
    data = _good(_csrf(page), issued=_issued(page), elapsed="5000")
    assert client.post(f"/r/{tok}/i/{slot}", data=data).status_code == 303
    h = _history(study)
    assert h[0].seconds is not None and 0 <= h[0].seconds < 30
    assert h[1].seconds is None
    assert h[2].seconds is not None and h[2].seconds < 30


def test_unratable_needs_reason(client: Any, study: dict[str, Any]) -> None:
    tok = study["tokens"]["rater1"]
    slot = _slot(study, "rater1", 1)
    csrf = _csrf(client.get(f"/r/{tok}/i/{slot}").text)
    r = client.post(f"/r/{tok}/i/{slot}", data={"csrf": csrf, "unratable": "1", "reason": "  "})
    assert r.status_code == 422 and "say why" in r.text.lower()
    assert _history(study) == []
    r = client.post(f"/r/{tok}/i/{slot}", data={"csrf": csrf, "unratable": "1", "reason": "image broken",
                                                "score_overall": "5"})
    assert r.status_code == 303
    (h,) = _history(study)
    assert h.unratable and h.reason == "image broken" and h.scores == {}
    home = client.get(f"/r/{tok}").text
    assert 'class="tile unratable"' in home


def test_redirects_to_next_unrated_then_home(client: Any, study: dict[str, Any]) -> None:
    tok = study["tokens"]["rater2"]
    assigns = study["assignments"]["rater2"]
    csrf = _csrf(client.get(f"/r/{tok}/i/{assigns[0].slot}").text)
    # rate the last one first: the next unrated wraps round to the first
    r = client.post(f"/r/{tok}/i/{assigns[-1].slot}", data=_good(csrf))
    assert r.headers["location"] == f"/r/{tok}/i/{assigns[0].slot}?saved={len(assigns)}"
    for a in assigns[:-1]:
        r = client.post(f"/r/{tok}/i/{a.slot}", data=_good(csrf))
        assert r.status_code == 303
    assert r.headers["location"] == f"/r/{tok}?saved={len(assigns) - 1}"
    home = client.get(r.headers["location"]).text
    assert "All 7 answers are rated" in home
    assert f"{len(assigns)}</b> / {len(assigns)} rated" in home


# ---- images ---------------------------------------------------------------------------------------------------------
def test_images_only_own(client: Any, study: dict[str, Any]) -> None:
    tok = study["tokens"]["rater1"]
    a0 = study["assignments"]["rater1"][0]  # item 0: a query and a reference image
    item = next(i for i in study["items"] if i.item_key == a0.item_key)
    r = client.get(f"/r/{tok}/img/{a0.slot}/0")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == (study["folder"] / item.images[0]).read_bytes()
    r = client.get(f"/r/{tok}/img/{a0.slot}/1")
    assert r.status_code == 200
    assert r.content == (study["folder"] / item.reference_images[0]).read_bytes()
    assert "content-disposition" not in r.headers  # the file name is not given away
    assert client.get(f"/r/{tok}/img/{a0.slot}/2").status_code == 404
    assert client.get(f"/r/{tok}/img/{a0.slot}/x").status_code == 404
    page = client.get(f"/r/{tok}/i/{a0.slot}").text
    assert item.images[0] not in page and Path(item.images[0]).name not in page


def test_image_paths_stay_inside_the_study(tmp_path: Path) -> None:
    from human_study.app import create_app

    study = make_study(tmp_path / "s", n_raters=1, n_items=1, repeats=False, gold=False)
    outside = tmp_path / "outside.png"
    outside.write_bytes((study["folder"] / study["items"][0].images[0]).read_bytes())
    (study["folder"] / "notes.txt").write_text("secret")
    with StudyStore(study["folder"]) as s:
        key = new_key()
        s.add_items([Item(item_key=key, id="evil", model="m", condition=None, category=None, judge=None,
                          question="q", reference="r", response="a",
                          images=("../outside.png", str(outside), "notes.txt", "study.sqlite"),
                          reference_images=(), judge_scores=None, judge_overall=None, judge_passed=None,
                          gold=None)])
        slot = new_key()
        s.add_assignments([Assignment(slot=slot, rater="rater1", position=5, item_key=key, kind="main")])
    tok = study["tokens"]["rater1"]
    with make_client(create_app(study["folder"])) as c:
        for k in range(4):
            assert c.get(f"/r/{tok}/img/{slot}/{k}").status_code == 404


# ---- headers, export, admin ------------------------------------------------------------------------------------------
def test_security_headers(client: Any, study: dict[str, Any]) -> None:
    tok = study["tokens"]["rater1"]
    slot = _slot(study, "rater1")
    for url in (f"/r/{tok}", f"/r/{tok}/i/{slot}", f"/r/{tok}/img/{slot}/0", f"/a/{study['admin']}", "/nothing",
                "/static/study.css"):
        r = client.get(url)
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-content-type-options"] == "nosniff"
    r = client.post(f"/r/{tok}/i/{slot}", data={"csrf": "x"})
    assert r.status_code == 403 and r.headers["x-frame-options"] == "DENY"
    page = client.get(f"/r/{tok}/i/{slot}").text
    assert "<script>" not in page and " style=" not in page and " on" + "click" not in page


def test_export_and_admin_summary(client: Any, study: dict[str, Any]) -> None:
    for rater, overall in (("rater1", "5"), ("rater2", "3")):
        tok = study["tokens"][rater]
        page = client.get(f"/r/{tok}/i/{_slot(study, rater)}").text
        csrf = _csrf(page)
        for a in study["assignments"][rater]:
            assert client.post(f"/r/{tok}/i/{a.slot}", data=_good(csrf, score_overall=overall)).status_code == 303
    r = client.get(f"/a/{study['admin']}/export.csv")
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == ["id", "model", "condition", "rater", "criterion", "score", "time_s", "revisions"]
    # 5 main + 1 gold per rater (the repeat left out), 5 keys each
    assert len(rows) == 2 * 6 * 5
    assert {r["model"] for r in rows} == {"secret-model-A", "secret-model-B"}
    assert {r["score"] for r in rows if r["criterion"] == "overall" and r["rater"] == "rater1"} == {"5"}
    page = client.get(f"/a/{study['admin']}").text
    assert "Krippendorff" in page and "Gold items" in page and "Repeats" in page

    from human_study.app import study_summary

    with StudyStore(study["folder"]) as s:
        summ = study_summary(s)
    assert [r["done"] for r in summ["raters"]] == [7, 7]
    inter = {x["key"]: x for x in summ["inter"]}
    assert inter["overall"]["n_items"] == 6 and inter["overall"]["n_pairs"] == 1
    assert inter["relevance"]["alpha"] != inter["relevance"]["alpha"] or inter["relevance"]["alpha"] == 1.0
    assert [r["pairs"] for r in summ["repeats"]] == [1, 1]
    assert [r["exact"] for r in summ["repeats"]] == [1.0, 1.0]
    gold = {g["rater"]: g for g in summ["gold"]}
    assert gold["rater1"]["n"] == 1 and gold["rater1"]["exact"] == pytest.approx(4 / 5)
    assert gold["rater2"]["within1"] == 1.0
    models = {m["model"]: m for m in summ["models"]}
    assert models["secret-model-B"]["n"] == 2 * 3 and models["secret-model-A"]["n"] == 2 * 2
    assert models["secret-model-A"]["human"] == 4.0  # raters 5 and 3
    assert "secret-model-A" in page and "By model" in page


def test_mask_secrets() -> None:
    import logging

    from human_study.app import MaskSecretsFilter, mask_secrets

    assert mask_secrets("GET /r/abcDEF_-123/i/slot 200") == "GET /r/***/i/slot 200"
    assert mask_secrets("GET /a/abcDEF_-123/export.csv") == "GET /a/***/export.csv"
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "bad %s", ("/r/tok123456789/i/s",), None)
    assert MaskSecretsFilter().filter(rec) and rec.getMessage() == "bad /r/***/i/s"


def test_create_app_needs_a_study(tmp_path: Path) -> None:
    from human_study.app import create_app
    from judgekit.io.errors import JudgekitError

    with pytest.raises(JudgekitError):
        create_app(tmp_path)


# ---- a real server (for the browser and load tests) ------------------------------------------------------------------
def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(folder: Path, port: int, log: Path, timeout: float = 30) -> Any:
    """``human_study.app.serve(folder, port=port)`` in a subprocess whose stdout and stderr are appended to
    ``log``; returns the Popen once ``/healthz`` answers."""
    import subprocess
    import sys
    import time

    import httpx

    out = open(log, "ab")  # noqa: SIM115 - closed by the caller's proc.wait()/kill via stop_server
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from human_study.app import serve; "
                             "serve(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]))", str(folder), str(port)],
                            stdout=out, stderr=subprocess.STDOUT)
    proc.log_file = out  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out.close()
            raise RuntimeError(f"the server exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    out.close()
    raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")


def stop_server(proc: Any, kill: bool = False) -> None:
    """Stop a server from :func:`start_server` (SIGTERM, or SIGKILL with ``kill``) and close its log."""
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except Exception:
            proc.kill()
            proc.wait()
    proc.log_file.close()
