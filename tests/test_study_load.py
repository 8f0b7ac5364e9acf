"""The study web app under load: 20 raters at once, 50 ratings each, against a uvicorn server subprocess that is
killed with SIGKILL midway and restarted on the same port and study. Clients retry what got no reply; at the
end every one of the 1,000 slots has a latest rating, every acknowledged rating (a 303 received) is in the
database, and no token ever appeared in the server's output."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

import httpx
from test_study_app import KEYS, free_port, make_study, start_server, stop_server

from human_study.store import StudyStore

N_RATERS = 20
N_ITEMS = 50
DEADLINE_S = 120


def _scores(rater_no: int, position: int) -> dict[str, int]:
    return {k: 1 + (rater_no + position + i) % 5 for i, k in enumerate(KEYS)}


@pytest.mark.slow
def test_twenty_raters_with_a_server_kill(tmp_path: Path) -> None:
    study = make_study(tmp_path / "study", n_raters=N_RATERS, n_items=N_ITEMS, repeats=False, gold=False)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    server = {"proc": start_server(study["folder"], port, log)}
    t0 = time.monotonic()
    lock = threading.Lock()
    acked: dict[str, dict[str, int]] = {}  # slot -> scores acknowledged by a 303
    attempts: dict[str, int] = {}  # slot -> POSTs sent
    failures: list[str] = []
    lost = {"requests": 0}
    killed = threading.Event()
    restarted = threading.Event()

    def rater(no: int, name: str) -> None:
        tok = study["tokens"][name]
        with httpx.Client(base_url=base, timeout=10, follow_redirects=False) as c:
            for a in study["assignments"][name]:
                scores = _scores(no, a.position)
                while True:
                    if time.monotonic() - t0 > DEADLINE_S:
                        failures.append(f"{name}: deadline at position {a.position}")
                        return
                    try:
                        page = c.get(f"/r/{tok}/i/{a.slot}")
                        if page.status_code != 200:
                            failures.append(f"{name}: GET {page.status_code}")
                            return
                        m = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
                        issued = re.search(r'name="issued" value="([^"]+)"', page.text)
                        assert m and issued
                        data = {f"score_{k}": str(v) for k, v in scores.items()}
                        data.update(csrf=m.group(1), issued=issued.group(1), comment=f"{name} {a.position}")
                        with lock:
                            attempts[a.slot] = attempts.get(a.slot, 0) + 1
                        r = c.post(f"/r/{tok}/i/{a.slot}", data=data)
                    except httpx.TransportError:
                        with lock:
                            lost["requests"] += 1
                        time.sleep(0.1)
                        continue
                    if r.status_code != 303:
                        failures.append(f"{name}: POST {r.status_code} {r.text[:200]}")
                        return
                    with lock:
                        acked[a.slot] = scores
                    break

    def killer() -> None:
        # SIGKILL the server once a third of the ratings are in, then start it again on the same port
        while len(acked) < N_RATERS * N_ITEMS // 3 and time.monotonic() - t0 < DEADLINE_S:
            time.sleep(0.05)
        stop_server(server["proc"], kill=True)
        killed.set()
        time.sleep(0.5)
        server["proc"] = start_server(study["folder"], port, log)
        restarted.set()

    def admin_watcher() -> None:
        # the admin page and a wrong token are requested too (their paths must be masked in the log)
        with httpx.Client(base_url=base, timeout=10) as c:
            while len(acked) < N_RATERS * N_ITEMS and time.monotonic() - t0 < DEADLINE_S:
                try:
                    assert c.get(f"/a/{study['admin']}").status_code == 200
                    assert c.get(f"/r/{study['admin']}").status_code == 404
                except httpx.TransportError:
                    pass
                time.sleep(1.0)

    threads = [threading.Thread(target=rater, args=(i, n)) for i, n in enumerate(study["tokens"])]
    threads += [threading.Thread(target=killer), threading.Thread(target=admin_watcher)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE_S + 30)
        elapsed = time.monotonic() - t0
        with httpx.Client(base_url=base) as c:
            assert c.get(f"/a/{study['admin']}/export.csv").status_code == 200
    finally:
        stop_server(server["proc"])

    assert failures == []
    assert killed.is_set() and restarted.is_set()
    assert elapsed < DEADLINE_S
    assert len(acked) == N_RATERS * N_ITEMS
    with StudyStore(study["folder"]) as s:
        assert s.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        latest = s.latest()
        history = s.history()
    assert len(latest) == N_RATERS * N_ITEMS  # none lost
    for slot, scores in acked.items():
        assert latest[slot].scores == scores
    per_slot: dict[str, int] = {}
    for r in history:
        per_slot[r.slot] = per_slot.get(r.slot, 0) + 1
    # a rating whose reply was lost may be stored twice (as a revision); never more often than it was sent
    assert all(1 <= per_slot[slot] <= attempts[slot] for slot in acked)
    assert len(history) <= sum(attempts.values())

    out = log.read_text(errors="replace")
    assert "/r/***/i/" in out and "/a/***" in out  # the masked request log is there
    for token in [*study["tokens"].values(), study["admin"]]:
        assert token not in out
    print(f"\n{len(acked)} ratings by {N_RATERS} raters in {elapsed:.1f}s, {lost['requests']} requests lost "
          f"to the kill, {len(history)} rows stored")
