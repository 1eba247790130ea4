"""User-facing errors: one clear line, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class KendaliError(Exception):
    """An error the user can fix (bad file, bad flag, bad field).

    ``where`` names the file or source; ``field`` the offending field path.
    """

    def __init__(self, problem: str, where: str = "", field: str = "") -> None:
        self.problem = problem
        self.where = where
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.where, self.field) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.problem}" if prefix else self.problem


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; any problem becomes a KendaliError naming the file (and line)."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KendaliError("no such file", where) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KendaliError(f"cannot read: {exc}", where) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark else ""
        raise KendaliError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}", where, line) from None
