"""Degrading image files on disk: a folder of images or the images of an items file, with a manifest.

Conventions:
- A *condition* is a named pipeline of degradation steps. ``--ops`` lists pipelines separated by commas;
  a pipeline joins operations with ``+`` (applied left to right); an operation may carry parameters as
  ``name:key=value``. Each pipeline is run at each requested severity; the condition's name is the
  pipeline with ``@severity`` after each operation, e.g. ``motion_blur@3``, ``jpeg@2+low_light:noise=1@2``.
  The ``robustmad`` preset's conditions are ``low_light`` and ``motion_blur``.
- Degraded copies are written to ``OUT/<condition>/<path relative to the sources' common folder>/
  <stem>_<condition><ext>`` (the source's stem is kept; ``:`` becomes ``_``). The source's format is kept
  unless ``fmt`` says otherwise; JPEG is written at quality 95.
- ``OUT/manifest.jsonl`` has one line per degraded file: source and output (paths relative to OUT),
  condition, steps with every parameter, severity, seed, sha256 of the source and output files, size and channels.
- From an items file, ``OUT/items.jsonl`` lists every clean item (``condition`` "clean", images pointing
  at the originals) and one copy per condition pointing at the degraded images (query and reference
  images degraded the same way); items that already had another condition are passed through unchanged.
- Nothing is half-written: files are made in a staging folder inside OUT and moved into place only when
  every image has been read and degraded; a bad image stops the run before anything is moved (and before an
  earlier run's output is touched).
- OUT must be missing, empty or the output of an earlier run (it has ``manifest.jsonl``); any other folder is
  refused. Re-running into an earlier run's OUT replaces that output: once the new files are made, the files
  the earlier manifest lists (and its ``manifest.jsonl`` and ``items.jsonl``) that this run does not write
  again are removed, then folders left empty; files the manifest does not list are kept.
- Images are checked before decoding: their header must be a recognised format and within the pixel cap of
  :mod:`judgekit.io.images` (``JUDGEKIT_MAX_IMAGE_PIXELS``); symbolic link loops and broken links are refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from judgekit.io import images
from judgekit.io.errors import JudgekitError
from judgekit.perturbation import ops as P

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
CLEAN = "clean"
MANIFEST = "manifest.jsonl"
ITEMS = "items.jsonl"
STAGING_PREFIX = ".judgekit-staging-"


@dataclass(frozen=True)
class Condition:
    """A named pipeline of steps (see the module's conventions for the name)."""

    name: str
    steps: tuple[P.Step, ...]
    severity: int | None = None


def parse_severities(text: str) -> list[int]:
    """``"3"``, ``"1-5"`` or ``"1,3,5"`` -> sorted distinct severities in 1-5."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if lo > hi:
                    raise ValueError
                out.update(range(lo, hi + 1))
            else:
                out.add(int(part))
    except ValueError:
        raise JudgekitError(f"expected a severity like 3, 1-5 or 1,3,5; got {text!r}", field="--severity") from None
    if not out or min(out) < 1 or max(out) > 5:
        raise JudgekitError(f"severities must be within 1-5; got {text!r}", field="--severity")
    return sorted(out)


def parse_conditions(ops: str, severities: Sequence[int]) -> list[Condition]:
    """Conditions for every pipeline in ``ops`` at every severity (see the module's conventions)."""
    pipelines = [p.strip() for p in ops.split(",") if p.strip()]
    if not pipelines:
        raise JudgekitError("no degradation given", field="--ops")
    out: list[Condition] = []
    for pipe in pipelines:
        parsed: list[tuple[str, str, dict[str, str]]] = []
        for part in pipe.split("+"):
            bits = [b.strip() for b in part.split(":")]
            name, overrides = bits[0], {}
            for b in bits[1:]:
                if "=" not in b:
                    raise JudgekitError(f"expected key=value after ':' in {part!r}", field="--ops")
                k, v = b.split("=", 1)
                overrides[k.strip()] = v.strip()
            label = name + "".join(f":{k}={v}" for k, v in overrides.items())
            parsed.append((name, label, overrides))
        for sev in severities:
            steps = tuple(P.steps_for(name, sev, overrides) for name, _, overrides in parsed)
            cname = "+".join(f"{label}@{sev}" for _, label, _ in parsed)
            out.append(Condition(cname, steps, sev))
    names = [c.name for c in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise JudgekitError(f"condition given twice: {', '.join(sorted(dup))}", field="--ops")
    return out


def robustmad_conditions(impl: str = "exact") -> dict[str, Condition]:
    """The preset's two conditions (see :func:`judgekit.perturbation.ops.robustmad_motion_blur` for ``impl``)."""
    return {"low_light": Condition("low_light", (P.Step("robustmad_low_light"),)),
            "motion_blur": Condition("motion_blur", (P.Step("robustmad_motion_blur", {"impl": impl}),))}


@dataclass
class _Job:
    source: Path
    conditions: list[Condition] = field(default_factory=list)


@dataclass
class PerturbResult:
    """What a run wrote: the manifest rows, the items file (or None) and timings; ``removed`` lists the files of
    an earlier run in the same folder that this run removed (paths relative to OUT, posix), ``replaced`` counts
    those it wrote again, and ``removed_conditions`` names the earlier conditions no longer written."""

    rows: list[dict[str, Any]]
    manifest: Path
    items: Path | None
    conditions: list[str]
    sources: int
    seconds: float
    removed: list[str] = field(default_factory=list)
    replaced: int = 0
    removed_conditions: list[str] = field(default_factory=list)

    def removal_note(self) -> str | None:
        """One line for the console about the earlier run's output, or None when there was none."""
        if not self.removed and not self.replaced:
            return None
        note = f"earlier output in {self.manifest.parent}: {self.replaced} files replaced, {len(self.removed)} removed"
        if self.removed_conditions:
            note += f" (conditions no longer asked for: {', '.join(self.removed_conditions)})"
        return note


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _slug(condition: str) -> str:
    return condition.replace(":", "_").replace("/", "_")


def _out_rel(source: Path, root: Path, condition: str, fmt: str) -> Path:
    rel = source.relative_to(root)
    ext = source.suffix if fmt == "same" else "." + fmt
    return Path(_slug(condition)) / rel.parent / f"{source.stem}_{_slug(condition)}{ext}"


def _common_root(paths: Sequence[Path]) -> Path:
    return Path(os.path.commonpath([str(p.parent) for p in paths]))


def list_images(folder: Path) -> list[Path]:
    """Every image file under ``folder`` (recursively; by extension; hidden names skipped), sorted by relative
    path. A symbolic link with an image's extension that leads nowhere (a loop, a missing target) is refused."""
    files = []
    for p in folder.rglob("*"):
        if p.suffix.lower() not in IMAGE_EXTS or any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        if p.is_file():
            files.append(p)
        elif p.is_symlink():
            raise JudgekitError(images.image_problem(p) or "not a file", path=p)
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _earlier_output(out_dir: Path) -> list[tuple[str, str]]:
    """``(output, condition)`` of every file an earlier run wrote into ``out_dir`` (from its manifest); ``[]``
    when ``out_dir`` is missing or empty (staging folders of other runs aside). Refuses a non-empty folder
    without a manifest, a manifest that is not judgekit's, and an output path that leaves the folder."""
    if not out_dir.exists():
        return []
    if not any(not e.name.startswith(STAGING_PREFIX) for e in out_dir.iterdir()):
        return []
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        raise JudgekitError(f"not empty and not a judgekit perturb output (no {MANIFEST}); choose an empty folder",
                            path=out_dir)
    out: list[tuple[str, str]] = []
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise JudgekitError(f"cannot read the earlier run's manifest ({exc})", path=manifest) from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not (isinstance(row, dict) and isinstance(row.get("output"), str) and "sha256_output" in row
                and isinstance(row.get("condition"), str)):
            raise JudgekitError("not a judgekit perturb manifest; choose an empty folder", path=manifest, line=n)
        rel = PurePosixPath(row["output"])
        if (rel.is_absolute() or not rel.parts or ".." in rel.parts or rel.parts[0].startswith(STAGING_PREFIX)
                or rel.as_posix() in (MANIFEST, ITEMS)):
            raise JudgekitError(f"output path {row['output']!r} is not inside the folder; choose an empty folder",
                                path=manifest, line=n)
        out.append((rel.as_posix(), row["condition"]))
    return out


def _remove_earlier(out_dir: Path, earlier: Sequence[tuple[str, str]], written: set[str]) -> tuple[list[str], int]:
    """Remove the files of ``earlier`` (and the earlier manifest and items file) that are not in ``written``,
    then the folders that leaves empty. Returns the paths removed (relative, posix) and how many of the
    earlier files are about to be replaced by files of ``written``."""
    removed: list[str] = []
    replaced = 0
    folders: set[Path] = set()
    base = out_dir.resolve()
    for rel in dict.fromkeys([r for r, _ in earlier] + [MANIFEST, ITEMS]):
        target = out_dir / rel
        present = target.is_symlink() or target.is_file()
        if present and not target.parent.resolve().is_relative_to(base):  # a linked folder: not ours
            present = False
        if rel in written:
            replaced += present
            continue
        if present:
            target.unlink()
            removed.append(rel)
            folders.update(p for p in target.parents if p != out_dir and p.is_relative_to(out_dir))
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty (files the manifest does not list) or already gone
            folder.rmdir()
    return removed, replaced


def run_perturb(input_path: Path, out_dir: Path, *, conditions: Sequence[Condition] | None = None,
                preset: str | None = None, seed: int | None = None, fmt: str = "same", threads: int = 2,
                robustmad_impl: str = "exact",
                progress: Callable[[int, int], None] | None = None) -> PerturbResult:
    """Degrade the images of ``input_path`` (a folder of images or an items file) into ``out_dir``.

    Give ``conditions`` (every image under every condition) or ``preset="robustmad"`` (one condition per
    image pair chosen by :func:`judgekit.perturbation.ops.robustmad_assignment` with ``seed``, default 42; pairs are
    the distinct (images, reference_images) of the clean items in order of first appearance, or each image
    of a folder in sorted order). ``seed`` (default 0) also seeds the random operations through
    :func:`judgekit.perturbation.ops.image_rng`.
    """
    from judgekit import __version__

    if (conditions is None) == (preset is None):
        raise JudgekitError("give either --ops or --preset", field="--ops")
    if preset is not None and preset != "robustmad":
        raise JudgekitError(f"unknown preset '{preset}' (robustmad)", field="--preset")
    if fmt not in ("same", "png", "jpg"):
        raise JudgekitError(f"unknown format '{fmt}' (same, png, jpg)", field="--format")
    if not input_path.exists():
        raise JudgekitError(images.image_problem(input_path) if input_path.is_symlink() else "not found",
                            path=input_path)
    if out_dir.exists() and not out_dir.is_dir():
        raise JudgekitError("exists and is not a folder", path=out_dir)
    earlier = _earlier_output(out_dir)

    items = None
    if input_path.is_dir():
        sources = list_images(input_path)
        inside = out_dir.resolve()
        sources = [p for p in sources if not p.resolve().is_relative_to(inside)]  # an earlier run's output
        if not sources:
            raise JudgekitError(f"no image files ({', '.join(IMAGE_EXTS)}) in the folder", path=input_path)
        root = input_path.resolve()
        sources = [s.resolve() for s in sources]
        units: list[tuple[Path, ...]] = [(s,) for s in sources]
    else:
        from judgekit.io.dataio import read_items

        items = read_items(input_path)
        clean = [it for it in items if (it.condition or CLEAN) == CLEAN]
        if not clean:
            raise JudgekitError("no clean items (condition empty or 'clean') to degrade", path=input_path)
        seen_units: set[tuple[Path, ...]] = set()
        units = []
        for it in clean:
            key = _unit_key(it)
            if key and key not in seen_units:
                seen_units.add(key)
                units.append(key)
        if not units:
            raise JudgekitError("no item has images to degrade", path=input_path)
        sources = sorted({p for u in units for p in u})
        root = _common_root(sources)

    run_seed = seed if seed is not None else (P.ROBUSTMAD_SEED if preset else 0)
    if preset:
        table = robustmad_conditions(robustmad_impl)
        assignment = [table[c] for c in P.robustmad_assignment(len(units), run_seed)]
        unit_conditions: list[list[Condition]] = [[c] for c in assignment]
    else:
        assert conditions is not None
        unit_conditions = [list(conditions) for _ in units]
    jobs: dict[Path, _Job] = {}
    for unit, conds in zip(units, unit_conditions, strict=True):
        for src in unit:
            job = jobs.setdefault(src, _Job(src))
            for c in conds:
                if c not in job.conditions:
                    job.conditions.append(c)

    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".judgekit-staging-"))
    t0 = time.perf_counter()
    try:
        import cv2

        def work(job: _Job) -> list[dict[str, Any]]:
            try:
                data = job.source.read_bytes()
            except OSError as exc:
                raise JudgekitError(f"cannot read image ({exc.strerror})", path=job.source) from None
            images.probe_bytes(data, job.source)  # a known format within the pixel cap, before decoding
            sha_in = _sha256(data)
            img = _decode(data, job.source)
            rows = []
            for cond in job.conditions:
                out = img
                rng = P.image_rng(run_seed, cond.name, sha_in)
                for step in cond.steps:
                    out = P.apply_step(out, step, rng)
                rel = _out_rel(job.source, root, cond.name, fmt)
                blob = P.encode_image(out, rel.suffix)
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(blob)
                rows.append({
                    "source": Path(os.path.relpath(job.source, out_dir.resolve())).as_posix(),
                    "output": rel.as_posix(), "condition": cond.name,
                    "steps": [{"op": s.op, "params": dict(s.params)} for s in cond.steps],
                    "severity": cond.severity, "seed": run_seed, "preset": preset,
                    "sha256_source": sha_in, "sha256_output": _sha256(blob),
                    "width": int(img.shape[1]), "height": int(img.shape[0]),
                    "channels": 1 if img.ndim == 2 else int(img.shape[2]),
                })
            return rows

        ordered = [jobs[s] for s in sources if s in jobs]
        rows: list[dict[str, Any]] = []
        done = 0
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            for job_rows in pool.map(work, ordered):
                rows.extend(job_rows)
                done += 1
                if progress:
                    progress(done, len(ordered))
        versions = {"judgekit": __version__, "opencv": cv2.__version__}
        for r in rows:
            r["versions"] = versions
        manifest_text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (staging / "manifest.jsonl").write_text(manifest_text, encoding="utf-8")
        items_out = None
        if items is not None:
            cond_of_unit = {i: c for i, c in enumerate(unit_conditions)}
            lines = _items_lines(items, units, cond_of_unit, root, out_dir, fmt)
            (staging / "items.jsonl").write_text(lines, encoding="utf-8")
            items_out = out_dir / "items.jsonl"
        # everything made: remove what an earlier run wrote and this one does not, then move into place
        # (files first, the manifest and items file last)
        staged = sorted((p for p in staging.rglob("*") if p.is_file()),
                        key=lambda p: (p.name in (MANIFEST, ITEMS), str(p)))
        written = {p.relative_to(staging).as_posix() for p in staged}
        removed, replaced = _remove_earlier(out_dir, earlier, written)
        for path in staged:
            dest = out_dir / path.relative_to(staging)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    names = sorted({r["condition"] for r in rows})
    gone = sorted({c for _, c in earlier} - set(names))
    return PerturbResult(rows, out_dir / MANIFEST, items_out, names, len(ordered), time.perf_counter() - t0,
                         removed=removed, replaced=replaced, removed_conditions=gone)


def _unit_key(item) -> tuple[Path, ...]:  # type: ignore[no-untyped-def]
    """The image pair of an item: its query images then its reference images (RobustMAD's unit)."""
    return tuple(Path(p) for p in (*item.images, *item.reference_images))


def _decode(data: bytes, path: Path):  # type: ignore[no-untyped-def]
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise JudgekitError("not a readable image (PNG, JPEG, BMP, TIFF or WebP expected)", path=path)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    P.check_image(img, str(path))
    return img


def _items_lines(items, units, cond_of_unit, root: Path, out_dir: Path, fmt: str) -> str:  # type: ignore[no-untyped-def]
    """The items file: clean items (paths to the originals) and one degraded copy per condition."""
    unit_index = {tuple(u): i for i, u in enumerate(units)}
    base = out_dir.resolve()

    def rel(p: str | Path) -> str:
        return os.path.relpath(Path(p), base)

    lines: list[str] = []
    degraded: list[str] = []
    for it in items:
        if (it.condition or CLEAN) != CLEAN:
            d = it.model_dump(mode="json", exclude_defaults=True)
            for name in ("images", "reference_images", "point_clouds"):  # relative to the new items file
                d[name] = [rel(p) for p in getattr(it, name)]
            lines.append(json.dumps({k: v for k, v in d.items() if v != []}, ensure_ascii=False))
            continue
        d = it.model_dump(mode="json", exclude_defaults=True)
        d["condition"] = CLEAN
        for name in ("images", "reference_images", "point_clouds"):
            d[name] = [rel(p) for p in getattr(it, name)]
        lines.append(json.dumps({k: v for k, v in d.items() if v != []}, ensure_ascii=False))
        key = _unit_key(it)
        if key not in unit_index:
            continue
        for cond in cond_of_unit[unit_index[key]]:
            c = dict(d)
            c["condition"] = cond.name
            c["images"] = [_out_rel(Path(p), root, cond.name, fmt).as_posix() for p in it.images]
            c["reference_images"] = [_out_rel(Path(p), root, cond.name, fmt).as_posix() for p in it.reference_images]
            c = {k: v for k, v in c.items() if v != []}
            degraded.append(json.dumps(c, ensure_ascii=False))
    return "\n".join(lines + degraded) + "\n"
