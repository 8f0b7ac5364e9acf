"""Raw features of one answer for the local judge's ``likelihood`` mode.

All log-probabilities are *mean per token* (natural log) of a continuation given a context, from
:class:`judgekit.local.models.LocalLM`, using plain-text templates (measured against the chat template in
bench/validate_local.py):

=================  ==========================================================================================
``lp_qr``          log p(answer | question + reference)           "how well the answer is predicted from the
                                                                   question and the ground truth" (GPTScore)
``lp_q``           log p(answer | question)
``lp_none``        log p(answer)  (unconditional: fluency)
``lp_rev``         log p(reference | question + answer)           BARTScore-style recall (comprehensiveness)
``lp_ref_q``       log p(reference | question)                    baseline for ``pmi_rev``
``pmi_ref``        lp_qr - lp_q      how much the reference raises the answer's likelihood
``pmi_q``          lp_q - lp_none    how much the question raises the answer's likelihood (relevance)
``pmi_qr``         lp_qr - lp_none
``pmi_rev``        lp_rev - lp_ref_q how much the answer raises the reference's likelihood
``f1``             SQuAD token-F1 of the answer against the best gold answer
``recall``         share of the best gold answer's tokens found in the answer
``contain``        1 if a normalised gold answer occurs in the answer
``cos_ref``        MiniLM cosine(answer, reference) (max over gold answers)
``cos_q``          MiniLM cosine(answer, question)
``cos_qa``         MiniLM cosine("question answer", "question gold") (max over gold answers)
``n_tokens``       answer length in model tokens
=================  ==========================================================================================

The question + reference prefix is shared by all answers to one item, so its KV cache is computed once per
(question, reference) group (:meth:`LocalLM.prefix_logprobs`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from judgekit.local.models import LocalLM
from judgekit.local.signals import Embedder, containment, split_references, token_f1, token_recall

FEATURE_VERSION = "1"


def ctx_qr(question: str, reference: str) -> str:
    return f"Question: {question}\nReference answer: {reference}\nAnswer:"


def ctx_q(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def ctx_rev(question: str, answer: str) -> str:
    return f"Question: {question}\nAnswer: {answer}\nReference answer:"


def ctx_ref_q(question: str) -> str:
    return f"Question: {question}\nReference answer:"


def _mean(s: Any) -> float:
    return s.sum_logp / s.n_tokens if s.n_tokens else 0.0


def embedding_features(items: Sequence[tuple[str, str, str]], emb: Embedder,
                       *, refs: Sequence[list[str]] | None = None) -> list[dict[str, float]]:
    """``cos_ref``, ``cos_q`` and ``cos_qa`` (cosine of "question answer" with "question gold", max over
    the gold answers: the question gives a short answer its meaning). Every distinct text is embedded once."""
    texts: dict[str, int] = {}
    golds_of = [refs[i] if refs is not None else split_references(r) for i, (_q, r, _a) in enumerate(items)]
    for (q, _r, a), golds in zip(items, golds_of, strict=True):
        for t in (q, a, f"{q} {a}", *golds, *(f"{q} {g}" for g in golds)):
            texts.setdefault(t, len(texts))
    vecs = emb.encode(list(texts))
    out = []
    for (q, _r, a), golds in zip(items, golds_of, strict=True):
        va, vqa = vecs[texts[a]], vecs[texts[f"{q} {a}"]]
        out.append({"cos_ref": max(float(vecs[texts[g]] @ va) for g in golds),
                    "cos_q": float(vecs[texts[q]] @ va),
                    "cos_qa": max(float(vecs[texts[f"{q} {g}"]] @ vqa) for g in golds)})
    return out


def extract(items: Sequence[tuple[str, str, str]], lm: LocalLM, emb: Embedder | None,
            *, refs: Sequence[list[str]] | None = None, with_rev: bool = True) -> list[dict[str, float]]:
    """Features for each ``(question, reference, answer)``; ``refs`` gives the gold answers per item for the
    reference signals (default: :func:`split_references` of the reference)."""
    t0 = time.perf_counter()
    n = len(items)
    feats: list[dict[str, float]] = [{} for _ in range(n)]
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (q, r, _a) in enumerate(items):
        groups.setdefault((q, r), []).append(i)
    for (q, r), idx in groups.items():
        answers = [" " + items[i][2] for i in idx]
        for i, s in zip(idx, lm.prefix_logprobs(ctx_qr(q, r), answers), strict=True):
            feats[i]["lp_qr"] = _mean(s)
            feats[i]["n_tokens"] = float(s.n_tokens)
        for i, s in zip(idx, lm.prefix_logprobs(ctx_q(q), answers), strict=True):
            feats[i]["lp_q"] = _mean(s)
        if with_rev:
            ref_q = _mean(lm.logprobs([ctx_ref_q(q)], [" " + r])[0])
            rev = lm.logprobs([ctx_rev(q, items[i][2]) for i in idx], [" " + r] * len(idx))
            for i, s in zip(idx, rev, strict=True):
                feats[i]["lp_rev"] = _mean(s)
                feats[i]["lp_ref_q"] = ref_q
    for i, s in enumerate(lm.logprobs([""] * n, [a for _q, _r, a in items])):
        feats[i]["lp_none"] = _mean(s)
    for i, (_q, r, a) in enumerate(items):
        f = feats[i]
        golds = refs[i] if refs is not None else split_references(r)
        f["pmi_ref"] = f["lp_qr"] - f["lp_q"]
        f["pmi_q"] = f["lp_q"] - f["lp_none"]
        f["pmi_qr"] = f["lp_qr"] - f["lp_none"]
        if with_rev:
            f["pmi_rev"] = f["lp_rev"] - f["lp_ref_q"]
        f["f1"] = token_f1(a, golds)
        f["recall"] = token_recall(a, golds)
        f["contain"] = containment(a, golds)
    if emb is not None:
        for f, e in zip(feats, embedding_features(items, emb, refs=refs), strict=True):
            f.update(e)
    per = (time.perf_counter() - t0) / max(1, n)
    for f in feats:
        f["seconds"] = per
        for k, v in f.items():
            if not math.isfinite(v):
                f[k] = 0.0
    return feats
