"""The old import paths (before the packages by pipeline stage, issue 11) still work for one release: each one
warns (DeprecationWarning naming the new path) and is the very module object of its new path."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator

import pytest

import judgekit
from judgekit import _compat

OLD_TO_NEW = {
    "judgekit.records": "judgekit.io.records",
    "judgekit.dataio": "judgekit.io.dataio",
    "judgekit.ratings": "judgekit.io.ratings",
    "judgekit.yamlpos": "judgekit.io.yamlpos",
    "judgekit.errors": "judgekit.io.errors",
    "judgekit.images": "judgekit.io.images",
    "judgekit.redact": "judgekit.io.redact",
    "judgekit.rubric": "judgekit.judging.rubric",
    "judgekit.prompt": "judgekit.judging.prompt",
    "judgekit.parse": "judgekit.judging.parse",
    "judgekit.runner": "judgekit.judging.runner",
    "judgekit.store": "judgekit.judging.store",
    "judgekit.backends": "judgekit.judging.backends",
    "judgekit.backends.litellm_backend": "judgekit.judging.backends.litellm_backend",
    "judgekit.backends.openai_compat": "judgekit.judging.backends.openai_compat",
    "judgekit.local.backend": "judgekit.judging.backends.local",
    "judgekit.perturb_files": "judgekit.perturbation.files",
    "judgekit.mcq": "judgekit.generation.mcq",
    "judgekit.agreement": "judgekit.stats.agreement",
    "judgekit.passrate": "judgekit.stats.passrate",
    "judgekit.robustness": "judgekit.stats.robustness",
    "judgekit.aggregate": "judgekit.stats.aggregate",
}


def _forget(name: str) -> None:
    """Forget that the old path ``name`` was imported (the module object of the new path stays loaded)."""
    sys.modules.pop(name, None)
    parent, _, child = name.rpartition(".")
    parent_module = sys.modules.get(parent)
    real = sys.modules.get(OLD_TO_NEW.get(name, ""))
    # the import system set the child on the old parent; on a new package (judgekit.backends is the module of
    # judgekit.judging.backends) the attribute is the new module's own
    if (real is not None and parent_module is not None and getattr(parent_module, child, None) is real
            and parent_module.__name__ != real.__name__.rpartition(".")[0]):
        delattr(parent_module, child)


@pytest.fixture
def aliases() -> Iterator[None]:
    _compat.install()
    before = {name for name in sys.modules if name in OLD_TO_NEW}
    yield
    for name in OLD_TO_NEW:
        if name not in before:
            _forget(name)


def test_the_alias_table_is_the_documented_one() -> None:
    assert _compat.ALIASES == OLD_TO_NEW


def test_install_is_idempotent() -> None:
    _compat.install()
    _compat.install()
    assert sum(1 for f in sys.meta_path if isinstance(f, _compat.AliasFinder)) == 1


@pytest.mark.parametrize(("old", "new"), sorted(OLD_TO_NEW.items()))
def test_old_path_warns_and_is_the_same_module(aliases: None, old: str, new: str) -> None:
    real = importlib.import_module(new)
    _forget(old)
    parent = old.rpartition(".")[0]
    if parent in OLD_TO_NEW:  # the old parent package (judgekit.backends) warns on its own
        with pytest.warns(DeprecationWarning, match=rf"{parent} is deprecated"):
            importlib.import_module(parent)
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated.* import {new} instead"):
        module = importlib.import_module(old)
    assert module is real
    assert sys.modules[old] is real
    # the module keeps its own name and spec: it was not loaded a second time under the old one
    assert real.__name__ == new and real.__spec__ is not None and real.__spec__.name == new
    parent, _, child = old.rpartition(".")
    assert getattr(sys.modules[parent], child) is real


def test_old_classes_are_the_new_classes(aliases: None) -> None:
    with pytest.warns(DeprecationWarning):
        import judgekit.records as old_records
    import judgekit.io.records as new_records

    assert old_records.Response is new_records.Response
    with pytest.warns(DeprecationWarning):
        from judgekit.runner import ClaimScheduler, RunOptions
    from judgekit.judging.claims import ClaimScheduler as NewClaimScheduler
    from judgekit.judging.runner import RunOptions as NewRunOptions

    assert RunOptions is NewRunOptions and ClaimScheduler is NewClaimScheduler


def test_from_old_rubric_import_load_rubric(aliases: None) -> None:
    _forget("judgekit.rubric")
    with pytest.warns(DeprecationWarning, match="judgekit.judging.rubric"):
        from judgekit.rubric import load_rubric
    from judgekit.judging.rubric import load_rubric as new_load_rubric

    assert load_rubric is new_load_rubric


def test_no_module_is_loaded_twice(aliases: None) -> None:
    """A submodule of an old package maps to its new package's submodule (not a second copy by the path finder)."""
    _forget("judgekit.backends")
    _forget("judgekit.backends.openai_compat")
    with pytest.warns(DeprecationWarning):
        import judgekit.backends.openai_compat as old
    import judgekit.judging.backends.openai_compat as new

    assert old is new
    loaded = {id(m): m for m in list(sys.modules.values())}.values()  # old and new names: one object
    files = [m.__file__ for m in loaded if (getattr(m, "__file__", None) or "").endswith(".py")
             and "judgekit" in m.__file__]
    assert len(files) == len(set(files))
    assert _compat.new_name("judgekit.backends.local") == "judgekit.judging.backends.local"
    assert _compat.new_name("judgekit.agreement.anything") == "judgekit.stats.agreement.anything"


@pytest.mark.parametrize("name", ["perturb", "generate", "report"])
def test_api_function_names_are_not_aliased(aliases: None, name: str) -> None:
    """judgekit.perturb/generate/report are functions of the API: no submodule of that name may shadow them."""
    assert _compat.new_name(f"judgekit.{name}") is None
    before = getattr(judgekit, name, None)
    assert importlib.util.find_spec(f"judgekit.{name}") is None
    assert getattr(judgekit, name, None) is before
    assert not isinstance(before, type(sys))  # not a module (a function, or absent before the API lands)


def test_other_names_are_left_to_the_import_system(aliases: None) -> None:
    assert _compat.new_name("judgekit.io.records") is None
    assert _compat.new_name("judgekit.cli") is None
    assert _compat.new_name("json") is None
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("judgekit.no_such_module")
