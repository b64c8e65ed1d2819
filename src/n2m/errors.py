"""Errors that speak to the user: which file, which line, which column, what was expected."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A problem in a data file, located as precisely as we can."""

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.column = column
        self.reason = message
        where = []
        if self.path:
            where.append(self.path)
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column '{column}'")
        text = f"{', '.join(where)}: {message}" if where else message
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class ConfigError(ValueError):
    """A recipe setting n2m cannot honour, with what to set instead."""
