"""The one exception type users see: a clear message naming the file and line (or field)."""

from __future__ import annotations

from pathlib import Path


class JudgekitError(Exception):
    """Bad input or configuration. The CLI prints ``str(err)`` (no traceback) and exits with code 2.

    ``where`` is rendered in front of the message as ``path:line`` (or ``path: field``) so editors and
    terminals can jump to it.
    """

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where += f":{self.line}"
        if self.field:
            where += f": field '{self.field}'" if where else f"field '{self.field}'"
        return f"{where}: {self.message}" if where else self.message


class BudgetExceeded(Exception):
    """Raised inside the runner when ``--max-cost`` is reached; no new call is started after it."""
