"""The package layout (issue 11), checked statically with ``ast`` (nothing of judgekit is imported here).

- Arrows only go down: each stage imports only the stages below it (the rules in :data:`RULES`; every import
  counts, at module level and inside functions).
- No import cycle between judgekit modules at module level.
- No module over :data:`MAX_LINES` lines unless its docstring says why it is "one piece".
- No file names an absolute path of one machine (a home or work folder).
- Every package has a docstring (what it does and what it must not import).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "judgekit"
MAX_LINES = 600


@dataclass(frozen=True)
class Import:
    importer: str  # the importing module, dotted
    target: str  # the judgekit module imported (a submodule when ``from pkg import submodule``)
    names: tuple[str, ...]  # what ``from target import ...`` takes (empty for ``import target``)
    line: int
    lazy: bool  # inside a function: runs when called, not when the module is imported
    type_checking: bool  # under ``if TYPE_CHECKING:``: never runs

    def __str__(self) -> str:
        what = f" ({', '.join(self.names)})" if self.names else ""
        where = "lazily, " if self.lazy else ""
        return f"{self.importer} imports {self.target}{what} ({where}line {self.line})"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


@cache
def _tree(name: str) -> ast.Module:
    path = _modules()[name]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, lazy: bool = False, type_checking: bool = False) -> Iterator[tuple[ast.AST, bool, bool]]:
    """Every node under ``node`` with whether it runs lazily (in a function) or never (TYPE_CHECKING)."""
    for child in ast.iter_child_nodes(node):
        yield child, lazy, type_checking
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(child, True, type_checking)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield stmt, lazy, True
                yield from _walk(stmt, lazy, True)
            for stmt in child.orelse:
                yield stmt, lazy, type_checking
                yield from _walk(stmt, lazy, type_checking)
        else:
            yield from _walk(child, lazy, type_checking)


@cache
def _imports(name: str) -> tuple[Import, ...]:
    """The judgekit imports of module ``name``."""
    modules = _modules()
    is_package = modules[name].name == "__init__.py"
    out: list[Import] = []
    for node, lazy, tc in _walk(_tree(name)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "judgekit" or alias.name.startswith("judgekit."):
                    out.append(Import(name, alias.name, (), node.lineno, lazy, tc))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if not (source == "judgekit" or source.startswith("judgekit.")):
                continue
            plain: list[str] = []
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:  # from a package import one of its modules
                    out.append(Import(name, f"{source}.{alias.name}", (), node.lineno, lazy, tc))
                else:
                    plain.append(alias.name)
            if plain:
                out.append(Import(name, source, tuple(plain), node.lineno, lazy, tc))
    return tuple(out)


def _all_imports() -> list[Import]:
    return [imp for name in _modules() for imp in _imports(name)]


def _stage(module: str) -> str:
    """``judgekit.io.dataio`` -> ``io``; the package itself -> ``""``; ``judgekit._compat`` -> ``_compat``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _version_only(imp: Import) -> bool:
    """``from judgekit import __version__`` inside a function: the root package is loaded before any of its
    modules, and its version is no arrow to a stage."""
    return imp.target == "judgekit" and imp.names == ("__version__",) and imp.lazy


# Each rule: the stage whose modules it constrains, what it says, and which of their imports are allowed.
Rule = Callable[[Import], bool]
RULES: dict[str, tuple[str, str, Rule]] = {
    "io": ("io", "judgekit.io imports no other judgekit package",
           lambda imp: _under(imp.target, "judgekit.io")),
    "stats": ("stats", "judgekit.stats imports only judgekit.io (and itself, and judgekit._lazy: the package's "
                       "lazy names, a helper of the root that imports nothing)",
              lambda imp: _under(imp.target, "judgekit.io", "judgekit.stats") or imp.target == "judgekit._lazy"),
    "judging": ("judging", "judgekit.judging imports only io, judging and sample_data (the shipped rubrics), and "
                           "judgekit.local only lazily, from judging/backends/local.py",
                lambda imp: _under(imp.target, "judgekit.io", "judgekit.judging", "judgekit.sample_data")
                or (_under(imp.target, "judgekit.local") and imp.lazy
                    and imp.importer == "judgekit.judging.backends.local")),
    "local": ("local", "judgekit.local imports only io, judging.rubric, judging.prompt, local and sample_data "
                       "(never the backends: judging.backends.local adapts it), and local.validate (the measured "
                       "agreement of the local judge with people) also the statistics",
              lambda imp: _under(imp.target, "judgekit.io", "judgekit.local", "judgekit.sample_data",
                                 "judgekit.judging.rubric", "judgekit.judging.prompt")
              or (imp.importer == "judgekit.local.validate" and _under(imp.target, "judgekit.stats"))),
    "perturbation": ("perturbation", "judgekit.perturbation imports only io and perturbation",
                     lambda imp: _under(imp.target, "judgekit.io", "judgekit.perturbation") or _version_only(imp)),
    "generation": ("generation", "judgekit.generation imports only io, judging and generation",
                   lambda imp: _under(imp.target, "judgekit.io", "judgekit.judging", "judgekit.generation")),
    "sample_data": ("sample_data", "judgekit.sample_data imports only io and sample_data",
                    lambda imp: _under(imp.target, "judgekit.io", "judgekit.sample_data")),
    "reporting": ("reporting", "judgekit.reporting does not import the CLI",
                  lambda imp: not _under(imp.target, "judgekit.cli")),
    "cli": ("*", "nothing imports judgekit.cli but the CLI itself",
            lambda imp: not _under(imp.target, "judgekit.cli") or _under(imp.importer, "judgekit.cli")),
}


def test_the_import_graph_is_seen() -> None:
    """The checks below see the imports that are there (a guard against a walk that finds nothing)."""
    seen = {(imp.importer, imp.target) for imp in _all_imports()}
    assert ("judgekit.judging.runner", "judgekit.judging.store") in seen
    assert ("judgekit.io.dataio", "judgekit.io.records") in seen
    lazy = [imp for imp in _imports("judgekit.judging.backends.local") if _under(imp.target, "judgekit.local")]
    assert lazy and all(imp.lazy for imp in lazy)
    assert {"judgekit", "judgekit.io", "judgekit.judging", "judgekit.stats"} <= set(_modules())


def test_the_rules_refuse_upward_arrows() -> None:
    def ok(rule: str, importer: str, target: str, *, lazy: bool = False, names: tuple[str, ...] = ()) -> bool:
        return RULES[rule][2](Import(importer, target, names, 1, lazy, False))

    assert not ok("io", "judgekit.io.dataio", "judgekit.judging.rubric", lazy=True)
    assert not ok("io", "judgekit.io.dataio", "judgekit", names=("__version__",), lazy=True)
    assert not ok("stats", "judgekit.stats.passrate", "judgekit.judging.rubric")
    assert ok("judging", "judgekit.judging.backends.local", "judgekit.local.judge", lazy=True)
    assert not ok("judging", "judgekit.judging.backends.local", "judgekit.local.judge")  # at module level
    assert not ok("judging", "judgekit.judging.runner", "judgekit.local.models", lazy=True)
    assert not ok("judging", "judgekit.judging.runner", "judgekit.stats.aggregate", lazy=True)
    assert not ok("local", "judgekit.local.judge", "judgekit.judging.backends", lazy=True)
    assert not ok("local", "judgekit.local.judge", "judgekit.stats.agreement")
    assert ok("local", "judgekit.local.validate", "judgekit.stats.agreement")
    assert ok("perturbation", "judgekit.perturbation.files", "judgekit", names=("__version__",), lazy=True)
    assert not ok("perturbation", "judgekit.perturbation.files", "judgekit", names=("__version__",))
    assert not ok("generation", "judgekit.generation.mcq", "judgekit.stats.aggregate")
    assert not ok("reporting", "judgekit.reporting.markdown", "judgekit.cli", lazy=True)
    assert not ok("cli", "judgekit.stats.aggregate", "judgekit.cli")
    assert ok("cli", "judgekit.cli.__main__", "judgekit.cli")


@pytest.mark.parametrize("rule", sorted(RULES))
def test_arrows_only_go_down(rule: str) -> None:
    stage, text, allowed = RULES[rule]
    bad = [str(imp) for imp in _all_imports()
           if (stage == "*" or _stage(imp.importer) == stage) and not allowed(imp)]
    assert not bad, f"{text}; but:\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles a depth-first search meets (one per back edge), each as a path that ends where it starts."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        colour[node] = grey
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt, black) == grey:
                found.append([*stack[stack.index(nxt):], nxt])
            elif colour.get(nxt) == white:
                visit(nxt)
        stack.pop()
        colour[node] = black

    for node in sorted(graph):
        if colour[node] == white:
            visit(node)
    return found


def test_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
    assert _cycles({"a": {"a"}}) == [["a", "a"]]


def test_no_import_cycle_at_module_level() -> None:
    """Imports that run when a module is imported (not those in functions, nor under TYPE_CHECKING) form no
    cycle. (The implicit import of parent packages is left out: a parent is always loaded before its child.)"""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for imp in _all_imports():
        if not imp.lazy and not imp.type_checking and imp.target in modules and imp.target != imp.importer:
            graph[imp.importer].add(imp.target)
    cycles = _cycles(graph)
    assert not cycles, "module-level import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _long_without_reason() -> list[str]:
    bad = []
    for name, path in _modules().items():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n <= MAX_LINES:
            continue
        doc = ast.get_docstring(_tree(name)) or ""
        _, phrase, reason = doc.partition("one piece")
        if not phrase or len(reason.split()) < 5:
            bad.append(f"{path.relative_to(ROOT)}: {n} lines")
    return bad


def test_no_module_over_the_limit_without_a_reason() -> None:
    bad = _long_without_reason()
    assert not bad, (f"modules over {MAX_LINES} lines whose docstring does not say why they are one piece "
                     "(split them, or say why in a sentence with 'one piece'):\n" + "\n".join(bad))


# Built from parts, so that this file does not name them itself.
_MACHINE_PATHS = re.compile("|".join(re.escape("/" + part + "/") for part in ("work", "root")))
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", "out"}  # bench/out: git-ignored outputs


def _text_files() -> Iterator[Path]:
    for top in ("judgekit", "tests", "bench"):
        for path in sorted((ROOT / top).rglob("*")):
            rel = path.relative_to(ROOT).parts
            if path.is_file() and not _SKIP_DIRS.intersection(rel[:-1]) and not path.name.endswith(".egg-info"):
                yield path
    for name in ("README.md", "ARCHITECTURE.md"):
        if (ROOT / name).is_file():
            yield ROOT / name


def test_no_file_names_an_absolute_path_of_this_machine() -> None:
    bad = []
    for path in _text_files():
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (images, compressed data sets)
        text = data.decode("utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), start=1):
            if _MACHINE_PATHS.search(line):
                bad.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:160]}")
    assert not bad, "absolute paths of one machine (use a path relative to the repository):\n" + "\n".join(bad)


def test_every_package_has_a_docstring() -> None:
    missing = [str(p.relative_to(ROOT)) for name, p in _modules().items()
               if p.name == "__init__.py" and not ast.get_docstring(_tree(name))]
    assert not missing, "packages without a docstring (what the package does, what it must not import):\n" + \
        "\n".join(missing)


def test_pyproject_lists_every_package():
    """A wheel ships only the packages pyproject.toml names: every folder with an __init__.py must be there."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "judgekit").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)


def test_human_study_is_reached_only_lazily_from_the_study_command() -> None:
    """judgekit never imports ``human_study`` (the study's web app and its extra's packages) but from
    ``judgekit/cli/study.py``, inside its functions; ``human_study`` imports judgekit, never its CLI or API."""
    found = []
    for name in _modules():
        for node, lazy, _tc in _walk(_tree(name)):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            if any(m == "human_study" or m.startswith("human_study.") for m in mods):
                found.append((name, node.lineno, lazy))  # type: ignore[attr-defined]
    assert found and all(name == "judgekit.cli.study" and lazy for name, _line, lazy in found), found
    for path in sorted((ROOT / "human_study").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                assert not node.module.startswith(("judgekit.cli", "judgekit.api")), (path.name, node.module)
