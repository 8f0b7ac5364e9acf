"""Deprecated aliases for the import paths of judgekit before its packages by pipeline stage (issue 11), kept for
one release.

:func:`install` puts an import hook (:class:`AliasFinder`) first on :data:`sys.meta_path`: importing an old path
(``judgekit.records``, ``judgekit.runner``, ``judgekit.backends.litellm_backend``, ...; see :data:`ALIASES`)
issues a :class:`DeprecationWarning` naming the new path and yields the very module object of the new path, so
that ``judgekit.records.Response is judgekit.io.records.Response`` and no module is ever loaded twice. A
submodule of an aliased package (``judgekit.backends.X``) maps to the same submodule of its new package.

Not aliased, on purpose: ``judgekit.perturb``, ``judgekit.generate`` and ``judgekit.report`` (the old modules,
now :mod:`judgekit.perturbation.ops`, :mod:`judgekit.generation.candidates` and
:mod:`judgekit.reporting.markdown`). Those names are functions of the package's API (``judgekit.perturb()``,
...); importing a submodule of the same name would replace the function attribute on the package.
``judgekit.cli`` needs no alias: it is still ``judgekit.cli`` (a package now).

This module imports nothing of judgekit at import time: the new modules are imported when an old path is.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import warnings
from types import ModuleType

#: Old import path -> new import path.
ALIASES: dict[str, str] = {
    # stage 0: records and files
    "judgekit.records": "judgekit.io.records",
    "judgekit.dataio": "judgekit.io.dataio",
    "judgekit.ratings": "judgekit.io.ratings",
    "judgekit.yamlpos": "judgekit.io.yamlpos",
    "judgekit.errors": "judgekit.io.errors",
    "judgekit.images": "judgekit.io.images",
    "judgekit.redact": "judgekit.io.redact",
    # stage 1: perturbation (judgekit.perturb is an API function now, not aliased)
    "judgekit.perturb_files": "judgekit.perturbation.files",
    # stage 2: generation (judgekit.generate is an API function now, not aliased)
    "judgekit.mcq": "judgekit.generation.mcq",
    # stage 3: judging
    "judgekit.rubric": "judgekit.judging.rubric",
    "judgekit.prompt": "judgekit.judging.prompt",
    "judgekit.parse": "judgekit.judging.parse",
    "judgekit.runner": "judgekit.judging.runner",
    "judgekit.store": "judgekit.judging.store",
    "judgekit.backends": "judgekit.judging.backends",
    "judgekit.backends.litellm_backend": "judgekit.judging.backends.litellm_backend",
    "judgekit.backends.openai_compat": "judgekit.judging.backends.openai_compat",
    "judgekit.local.backend": "judgekit.judging.backends.local",
    # stage 4: statistics
    "judgekit.agreement": "judgekit.stats.agreement",
    "judgekit.passrate": "judgekit.stats.passrate",
    "judgekit.robustness": "judgekit.stats.robustness",
    "judgekit.aggregate": "judgekit.stats.aggregate",
}

#: Old packages whose submodules map to the same submodules of the new package (none loaded twice).
_PACKAGES: dict[str, str] = {"judgekit.backends.": "judgekit.judging.backends.",
                             "judgekit.agreement.": "judgekit.stats.agreement."}


def new_name(old: str) -> str | None:
    """The new import path of the old path ``old``, or None when ``old`` is not an old path."""
    target = ALIASES.get(old)
    if target is not None:
        return target
    for prefix, new_prefix in _PACKAGES.items():
        if old.startswith(prefix):
            return new_prefix + old[len(prefix):]
    return None


# The finder and the loader implement the protocols of importlib.abc.MetaPathFinder / Loader without subclassing
# them: importing importlib.abc costs ~10 ms, a third of judgekit's start-up (judgekit --help).
class _AliasLoader:
    """Loads an old path as the module of its new path (imported if need be) and warns once per import."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._real_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        warnings.warn(f"{spec.name} is deprecated and will be removed in the next judgekit release; "
                      f"import {self.target} instead", DeprecationWarning, stacklevel=2)
        self._real_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system has just set module.__spec__ to the alias's spec: give the module its own back (the
        # module is already executed, under its new name).
        if self._real_spec is not None:
            module.__spec__ = self._real_spec


class AliasFinder:
    """Finds the old import paths of :data:`ALIASES` (and submodules of the old packages)."""

    _judgekit_alias_finder = True  # how install() recognises one (also an instance from a reloaded module)

    def find_spec(self, fullname: str, path=None, target=None):  # type: ignore[no-untyped-def]
        if not fullname.startswith("judgekit."):
            return None
        new = new_name(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


def install() -> None:
    """Put :class:`AliasFinder` first on :data:`sys.meta_path` (before the path finder, which would otherwise
    load a submodule of an aliased package a second time under its old name). Idempotent."""
    if not any(getattr(f, "_judgekit_alias_finder", False) for f in sys.meta_path):
        sys.meta_path.insert(0, AliasFinder())


__all__ = ["ALIASES", "AliasFinder", "install", "new_name"]
