"""Raw features of one answer for the local judge's ``likelihood`` mode.

All log-probabilities are *mean per token* (natural log) of a continuation given a context, from
:class:`judgekit.local.models.LocalLM`, using plain-text templates (measured against the chat template in
bench/validate_local.py):

=================  ==========================================================================================
``lp_qr``          log p(answer | question + reference)           "how well the answer is predicted from the
                                                                   question and the ground truth" (GPTScore)
``lp_q``           log p(answer | question)
``lp_none``        log p(answer)  (unconditional: fluency; only with ``with_none``)
``lp_rev``         log p(gold | question + answer)                BARTScore-style recall (comprehensiveness),
                                                                   the best of the gold answers
``lp_ref_q``       log p(gold | question)                         baseline for ``pmi_rev`` (same gold)
``pmi_ref``        lp_qr - lp_q      how much the reference raises the answer's likelihood
``pmi_q``          lp_q - lp_none    how much the question raises the answer's likelihood (relevance)
``pmi_qr``         lp_qr - lp_none
``pmi_rev``        max over the gold answers of log p(gold | question + answer) - log p(gold | question):
                                     how much the answer raises the reference's likelihood
``f1``             SQuAD token-F1 of the answer against the best gold answer
``recall``         share of the best gold answer's tokens found in the answer
``contain``        1 if a normalised gold answer occurs in the answer
``cos_ref``        MiniLM cosine(answer, reference) (max over gold answers)
``cos_q``          MiniLM cosine(answer, question)
``cos_qa``         MiniLM cosine("question answer", "question gold") (max over gold answers)
``n_tokens``       answer length in model tokens
``lp_cf``          log p(answer | question + counterfactual reference), the best of the counterfactuals: the
                   reference with every sentence's polarity flipped (:func:`~judgekit.local.signals.negate_text`)
                   and, when it names places, with every spatial word mirrored
                   (:func:`~judgekit.local.signals.mirror_places`)
``cf_margin``      lp_qr - lp_cf: how much better the answer fits the reference than its contradicting
                   versions (an NLI-style likelihood ratio; negative when the answer fits "not R" better)
``cf_sum``         the same on the summed (not mean) log-probabilities: a contradiction is a few tokens
``polarity``       minus :func:`~judgekit.local.signals.polarity_mismatch`: -1..0, below 0 when an answer
                   sentence and the reference sentence it matches best differ in negation
``place``          minus :func:`~judgekit.local.signals.place_conflict`: -1..0, below 0 when the answer puts the
                   defect on the other side ("right" for "left") on an axis both name
``kind``           minus :func:`~judgekit.local.signals.kind_conflict`: -1 when the answer names kinds of defect
                   and none of the reference's ("a dent" for "a scratch"), else 0
``ref_words``      words in the longest gold answer (the contradiction gate applies to short references only)
=================  ==========================================================================================

The question + reference prefix is shared by all answers to one item, so its KV cache is computed once per
(question, reference) group (:meth:`LocalLM.prefix_logprobs`). A long reference (e.g. a source article) is
cut to its first ``REFERENCE_TOKENS`` tokens *inside* the template, so that its opening (where a news
article's key facts are) and the "Answer:" cue both survive; cutting the whole context from the front
instead kept the article's tail and cost about 0.14 of SummEval Spearman (bench/validate_local.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from judgekit.local.models import LocalLM
from judgekit.local.signals import (
    Embedder,
    containment,
    kind_conflict,
    mirror_places,
    negate_text,
    place_conflict,
    polarity_mismatch,
    split_references,
    token_f1,
    token_recall,
)

FEATURE_VERSION = "2"  # of the features the calibration formulas use (polarity, place, kind and cf_* were added
#                        beside them: the contradiction gate's terms, which a calibration names, not the formulas)
REFERENCE_TOKENS = 768  # of the reference inside the likelihood context


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


def counterfactual_references(reference: str) -> list[str]:
    """The contradicting versions of a reference (each gold answer of a " | "-joined reference on its own):
    its negation and, when it names places, its mirror image."""
    parts = reference.split(" | ")
    out = [" | ".join(negate_text(p) for p in parts)]
    mirrored = [mirror_places(p) for p in parts]
    if any(m is not None for m in mirrored):
        out.append(" | ".join(m if m is not None else p for m, p in zip(mirrored, parts, strict=True)))
    return out


def counterfactual_logprobs(lm: LocalLM, question: str, reference: str,
                            answers: Sequence[str]) -> list[tuple[float, float]]:
    """Per answer, (mean, sum) log p(answer | question + counterfactual reference), each the maximum over
    :func:`counterfactual_references` (the one the answer fits best). ``answers`` carry their leading space."""
    best: list[tuple[float, float]] = [(-math.inf, -math.inf)] * len(answers)
    for cf in counterfactual_references(reference):
        for k, s in enumerate(lm.prefix_logprobs(ctx_qr(question, cf), answers)):
            best[k] = (max(best[k][0], _mean(s)), max(best[k][1], s.sum_logp))
    return best


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
            *, refs: Sequence[list[str]] | None = None, with_rev: bool = True, with_cf: bool = False,
            with_none: bool = False) -> list[dict[str, float]]:
    """Features for each ``(question, reference, answer)``; ``refs`` gives the gold answers per item for the
    reference signals (default: :func:`split_references` of the reference). ``with_cf`` computes the
    counterfactual-reference features (``lp_cf``, ``cf_margin``, ``cf_sum``: one or two more passes over the
    question + reference prefix; for analysis, the shipped judge does not use them, see README).
    ``with_none`` adds ``lp_none``, ``pmi_q`` and ``pmi_qr`` (one more pass; the shipped calibration does not use
    them)."""
    t0 = time.perf_counter()
    n = len(items)
    feats: list[dict[str, float]] = [{} for _ in range(n)]
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (q, r, _a) in enumerate(items):
        groups.setdefault((q, r), []).append(i)
    for (q, r), idx in groups.items():
        answers = [" " + items[i][2] for i in idx]
        r_clip = lm.clip_head(r, REFERENCE_TOKENS)
        for i, s in zip(idx, lm.prefix_logprobs(ctx_qr(q, r_clip), answers), strict=True):
            feats[i]["lp_qr"] = _mean(s)
            feats[i]["n_tokens"] = float(s.n_tokens)
        for i, s in zip(idx, lm.prefix_logprobs(ctx_q(q), answers), strict=True):
            feats[i]["lp_q"] = _mean(s)
        if with_cf:
            for i, (lp_cf, sum_cf) in zip(idx, counterfactual_logprobs(lm, q, r_clip, answers), strict=True):
                feats[i]["lp_cf"] = lp_cf
                feats[i]["cf_margin"] = feats[i]["lp_qr"] - lp_cf
                feats[i]["cf_sum"] = feats[i]["lp_qr"] * feats[i]["n_tokens"] - sum_cf
        if with_rev:
            golds = list(dict.fromkeys(refs[idx[0]] if refs is not None else split_references(r)))
            base = [_mean(s) for s in lm.prefix_logprobs(ctx_ref_q(q), [" " + g for g in golds])]
            pairs = [(i, j) for i in idx for j in range(len(golds))]
            rev = lm.logprobs([ctx_rev(q, items[i][2]) for i, _j in pairs], [" " + golds[j] for _i, j in pairs])
            best: dict[int, tuple[float, float, float]] = {}
            for (i, j), s in zip(pairs, rev, strict=True):
                cand = (_mean(s) - base[j], _mean(s), base[j])
                if i not in best or cand[0] > best[i][0]:
                    best[i] = cand
            for i, (pmi, lp, b) in best.items():
                feats[i]["lp_rev"], feats[i]["lp_ref_q"], feats[i]["pmi_rev"] = lp, b, pmi
    if with_none:
        for i, s in enumerate(lm.logprobs([""] * n, [a for _q, _r, a in items])):
            feats[i]["lp_none"] = _mean(s)
    for i, (_q, r, a) in enumerate(items):
        f = feats[i]
        golds = refs[i] if refs is not None else split_references(r)
        f["pmi_ref"] = f["lp_qr"] - f["lp_q"]
        if with_none:
            f["pmi_q"] = f["lp_q"] - f["lp_none"]
            f["pmi_qr"] = f["lp_qr"] - f["lp_none"]
        f["f1"] = token_f1(a, golds)
        f["recall"] = token_recall(a, golds)
        f["contain"] = containment(a, golds)
        f["polarity"] = -polarity_mismatch(a, golds)
        f["place"] = -place_conflict(a, golds)
        f["kind"] = -kind_conflict(a, golds)
        f["ref_words"] = float(max((len(g.split()) for g in golds), default=0))
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
