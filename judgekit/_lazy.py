"""Names of a package loaded from their modules on first use (PEP 562), shared by ``judgekit``, ``judgekit.api``
and ``judgekit.stats``: importing the package stays cheap (``judgekit --help`` imports no API module, no numpy),
and each name is the object of its module, not a copy. Imports nothing at import time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def lazy(package: str, where: Mapping[str, str], namespace: dict[str, Any]) -> tuple[Callable[[str], Any],
                                                                                     Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the package ``package`` whose public names are ``where`` (name -> the full
    name of the module defining it); a loaded name is stored in ``namespace`` (the package's ``globals()``), so
    it is looked up only once."""

    def getattr_(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *where})

    return getattr_, dir_
