"""MMAD's prompt settings for ``judgekit generate``: normal template images before the query, and domain knowledge.

Settings (``--shots``): ``0`` (no template, the default), ``K`` (K >= 1 normal templates of the item's product,
chosen at random but deterministically: a ``random.Random`` seeded with the SHA-256 of the item's id samples K
of the product's templates in path order) and ``1+`` (the one normal template most similar to the query image,
as MMAD's "1-shot+" retrieval).

- Template pool: ``--templates DIR`` with one sub-folder per product (``DIR/bottle/*.png``, ...), or else the
  items of the items file marked ``"meta": {"normal": true}`` (their images are templates of their product).
  An item's product is its ``meta.product`` when given, else its ``category`` (MMAD's multiple-choice items use
  ``category`` for the subtask, so give ``meta.product`` there). Product names match case-insensitively,
  ignoring spaces, ``_`` and ``-``.
- A template with the same file content (SHA-256) as one of the item's own images is never used for it.
- Retrieval score of template ``t`` for query ``q`` (both read as BGR, resized to 256 x 256 with
  ``cv2.INTER_AREA``): ``score = SSIM(gray_q, gray_t) - Bhattacharyya(hist_q, hist_t)`` where ``SSIM`` is
  ``skimage.metrics.structural_similarity(..., data_range=255)`` on the ``cv2.COLOR_BGR2GRAY`` images and the
  histograms are ``cv2.calcHist`` of the three channels with 8 bins each over ``[0, 256)``, compared with
  ``cv2.compareHist(..., cv2.HISTCMP_BHATTACHARYYA)`` (0 = identical, 1 = disjoint). The highest score wins;
  a tie goes to the first template in path order.
- Feature cache: the grayscale image and histogram of every image are stored as ``<sha256>.npz`` in a cache
  folder (by default ``<store>.shots`` beside the store), keyed by file content, so a second run reads them.
- Knowledge (``--knowledge FILE``): MMAD's ``domain_knowledge.json`` shape, ``{dataset: {product: {defect type:
  text}}}``; also ``{dataset: {product: text}}``, ``{product: {defect type: text}}`` and ``{product: text}``.
  An item's text is found under its ``dataset`` (matched as product names are) and then its product; when the
  dataset is not a key, under the product in whichever dataset has it (or at the top level). A product's
  texts of several defect types are joined with blank lines, in file order. An item whose product has no
  entry is asked without knowledge.
- The prompt: ``"The first K image(s) show normal, defect-free examples of this product; the image(s) after them
  are the one(s) to inspect."``, then ``"Domain knowledge about this product:\\n<text>"``, then the question.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from judgekit.io.errors import JudgekitError
from judgekit.io.records import Item

RESIZE = (256, 256)
HIST_BINS = 8
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Shots:
    """What one item's prompt adds: template image paths and domain knowledge text."""

    templates: tuple[str, ...] = ()
    knowledge: str | None = None

    @property
    def is_default(self) -> bool:
        return not self.templates and self.knowledge is None

    def preface(self) -> str:
        """The text put before the question (empty in the default setting)."""
        parts = []
        if self.templates:
            k = len(self.templates)
            parts.append(f"The first {k} image{'s' if k > 1 else ''} show{'' if k > 1 else 's'} normal, defect-free "
                         f"example{'s' if k > 1 else ''} of this product; the image(s) after "
                         f"{'them' if k > 1 else 'it'} are the one(s) to inspect.")
        if self.knowledge:
            parts.append(f"Domain knowledge about this product:\n{self.knowledge}")
        return "\n\n".join(parts)


def parse_shots(text: str | int) -> tuple[int, bool]:
    """``"0"`` / ``"K"`` / ``"1+"`` as (number of templates, retrieved); JudgekitError for anything else."""
    s = str(text).strip()
    if s == "1+":
        return 1, True
    if s.isdigit():
        return int(s), False
    raise JudgekitError(f"expected 0, a number of templates K or 1+ (the most similar template), got {s!r}",
                        field="--shots")


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.casefold())


def product_of(item: Item) -> str | None:
    """The item's product: ``meta.product`` when given, else its ``category``."""
    p = item.meta.get("product")
    return str(p) if p not in (None, "") else item.category


# ------------------------------------------------------------------------------------------------ template pool


def _file_sha256(path: str) -> str:
    from judgekit.judging.store import _file_sha256 as sha

    try:
        return sha(path)
    except OSError as exc:
        raise JudgekitError(f"cannot read image: {exc}", path=path) from None


def pool_from_dir(root: Path) -> dict[str, list[str]]:
    """``{normalised product: [image paths]}`` from ``root/<product>/*`` (sorted paths)."""
    if not root.is_dir():
        raise JudgekitError("templates folder not found (expected one sub-folder of normal images per product)",
                            path=root, field="--templates")
    pool: dict[str, list[str]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(str(f) for f in sub.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            pool.setdefault(_norm(sub.name), []).extend(files)
    if not pool:
        raise JudgekitError("templates folder has no sub-folder with images (expected DIR/<product>/*.png)",
                            path=root, field="--templates")
    return pool


def pool_from_items(items: Sequence[Item]) -> dict[str, list[str]]:
    """``{normalised product: [image paths]}`` from the items marked ``meta.normal: true``."""
    pool: dict[str, list[str]] = {}
    for it in items:
        if it.meta.get("normal") is True and product_of(it) is not None:
            pool.setdefault(_norm(product_of(it) or ""), []).extend(it.images)
    return {k: sorted(set(v)) for k, v in pool.items()}


# ------------------------------------------------------------------------------------------------ retrieval


def read_bgr(path: str) -> np.ndarray:
    """An image file as a 3-channel uint8 BGR array; JudgekitError naming the file when it cannot be read."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise JudgekitError(f"cannot read image: {exc}", path=path) from None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise JudgekitError("cannot decode image", path=path)
    return img


def features(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(grayscale resized to :data:`RESIZE`, 8x8x8 colour histogram of the resized image) of a BGR image."""
    import cv2

    small = cv2.resize(img, RESIZE, interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    hist = cv2.calcHist([small], [0, 1, 2], None, [HIST_BINS] * 3, [0, 256] * 3)
    return gray, hist


def similarity(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """``SSIM(gray_a, gray_b) - Bhattacharyya(hist_a, hist_b)`` (see the module docstring)."""
    import cv2
    from skimage.metrics import structural_similarity

    ssim = float(structural_similarity(a[0], b[0], data_range=255))
    return ssim - float(cv2.compareHist(a[1], b[1], cv2.HISTCMP_BHATTACHARYYA))


@dataclass
class FeatureCache:
    """Features of images keyed by file content, kept in memory and as ``<sha256>.npz`` under ``folder``."""

    folder: Path | None
    computed: int = 0  # features computed (not read from disk) by this cache
    _mem: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def get(self, path: str, digest: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        digest = digest or _file_sha256(path)
        if digest in self._mem:
            return self._mem[digest]
        file = self.folder / f"{digest}.npz" if self.folder is not None else None
        feats = None
        if file is not None and file.is_file():
            try:
                with np.load(file) as z:
                    feats = (z["gray"], z["hist"])
            except (OSError, ValueError, KeyError):
                feats = None  # a damaged cache entry is recomputed
        if feats is None:
            feats = features(read_bgr(path))
            self.computed += 1
            if file is not None:
                import os

                file.parent.mkdir(parents=True, exist_ok=True)
                tmp = file.with_name(f".{digest}.{os.getpid()}.npz")
                np.savez(tmp, gray=feats[0], hist=feats[1])
                os.replace(tmp, file)  # atomic: a reader sees the whole entry or none
        self._mem[digest] = feats
        return feats


# ------------------------------------------------------------------------------------------------ knowledge


def load_knowledge(path: Path) -> dict[str, Any]:
    """Read a knowledge file (see the module docstring for the shapes); JudgekitError naming it otherwise."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise JudgekitError(f"cannot read the knowledge file: {exc}", path=path, field="--knowledge") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise JudgekitError(f"not valid JSON: {exc}", path=path, field="--knowledge") from None

    def check(node: Any, depth: int, where: str) -> None:
        if isinstance(node, str) and depth > 1:
            return
        if not isinstance(node, dict) or depth > 3 or (depth == 1 and not node):
            raise JudgekitError(f"{where or 'top level'}: expected an object mapping dataset/product names to "
                                "text or to objects of defect type -> description (MMAD's domain_knowledge.json)",
                                path=path, field="--knowledge")
        for k, v in node.items():
            check(v, depth + 1, f"{where}/{k}" if where else str(k))

    check(doc, 1, "")
    return doc


def _text(node: Any) -> str:
    if isinstance(node, str):
        return node.strip()
    return "\n\n".join(t for t in (_text(v) for v in node.values()) if t)


def _is_product_node(node: Any) -> bool:
    """Text, or an object of defect type -> text (not an object of products)."""
    return isinstance(node, str) or (isinstance(node, dict) and all(isinstance(v, str) for v in node.values()))


def knowledge_for(doc: dict[str, Any], dataset: str | None, product: str | None) -> str | None:
    """The knowledge text of ``product`` (under ``dataset`` when that is a key); None when there is none."""
    if product is None:
        return None
    want = _norm(product)
    keys = {_norm(k): k for k in doc}
    scopes: list[Any] = []
    if dataset is not None and _norm(dataset) in keys and not _is_product_node(doc[keys[_norm(dataset)]]):
        scopes.append(doc[keys[_norm(dataset)]])
    else:
        scopes.append(doc)
        scopes += [v for v in doc.values() if isinstance(v, dict) and not _is_product_node(v)]
    for scope in scopes:
        for k, v in scope.items():
            if _norm(k) == want and _is_product_node(v):
                return _text(v) or None
    return None


# ------------------------------------------------------------------------------------------------ the plan


@dataclass
class ShotPlan:
    """The setting of one generation run: chooses each item's :class:`Shots`."""

    shots: str = "0"
    pool: dict[str, list[str]] = field(default_factory=dict)
    knowledge: dict[str, Any] | None = None
    cache: FeatureCache = field(default_factory=lambda: FeatureCache(None))
    source: str = ""  # where the pool came from, for messages

    @property
    def is_default(self) -> bool:
        return self.shots == "0" and self.knowledge is None

    def record(self, chosen: Shots) -> dict[str, Any]:
        """The run's setting as written to ``meta.generation`` (templates: the item's)."""
        return {"shots": self.shots, "templates": list(chosen.templates), "knowledge": self.knowledge is not None}

    def for_item(self, item: Item) -> Shots:
        k, retrieve = parse_shots(self.shots)
        product = product_of(item)
        text = knowledge_for(self.knowledge, item.dataset, product) if self.knowledge is not None else None
        if k == 0:
            return Shots((), text)
        if product is None:
            raise JudgekitError(f"item {item.id!r} has no product (meta.product or category) to take normal "
                                "templates of", field="--shots")
        own = {_file_sha256(p) for p in [*item.images, *item.reference_images]}
        cands = [(p, d) for p in self.pool.get(_norm(product), []) if (d := _file_sha256(p)) not in own]
        if len(cands) < k:
            raise JudgekitError(f"item {item.id!r}: {len(cands)} normal template(s) of product {product!r} "
                                f"(other than the item's own images) in {self.source}; --shots {self.shots} needs "
                                f"{k}", field="--shots")
        if retrieve:
            if not item.images:
                raise JudgekitError(f"item {item.id!r} has no image to retrieve a similar template for",
                                    field="--shots")
            query = self.cache.get(item.images[0])
            scores = [similarity(query, self.cache.get(p, d)) for p, d in cands]
            best = max(range(len(cands)), key=lambda i: (scores[i], -i))
            return Shots((cands[best][0],), text)
        seed = int(hashlib.sha256(item.id.encode()).hexdigest()[:16], 16)
        picked = random.Random(seed).sample([p for p, _ in cands], k)
        return Shots(tuple(picked), text)


def make_plan(items: Sequence[Item], *, shots: str | int = "0", templates: Path | None = None,
              knowledge: Path | None = None, items_path: Path | None = None,
              cache_dir: Path | None = None) -> ShotPlan:
    """The :class:`ShotPlan` of ``judgekit generate --shots/--templates/--knowledge`` (checks its inputs)."""
    k, _ = parse_shots(shots)
    plan = ShotPlan(shots=str(shots).strip(), cache=FeatureCache(cache_dir))
    if knowledge is not None:
        plan.knowledge = load_knowledge(Path(knowledge))
    if templates is not None:
        plan.pool, plan.source = pool_from_dir(Path(templates)), str(templates)
    elif k:
        plan.pool = pool_from_items(items)
        plan.source = f"the items marked meta.normal: true of {items_path or 'the items'}"
        if not plan.pool:
            raise JudgekitError("--shots needs normal templates: give --templates DIR (one sub-folder per product) "
                                "or mark normal items with \"meta\": {\"normal\": true}",
                                path=items_path, field="--shots")
    return plan

