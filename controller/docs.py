"""Regenerate the field tables of docs/policies.md, docs/topology.md and docs/report.md from the definitions.

    python -m controller.docs          # rewrite the tables in place
    python -m controller.docs --check  # only say which table is stale; exit 1 if one is

Each table sits between the lines ``<!-- fields: generated ... -->`` and ``<!-- /fields -->``;
the text around it is written by hand. tests/test_docs.py fails when a table is stale.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from controller.core import policy, settings, topology

DOCS = Path(__file__).resolve().parents[1] / "docs"
TABLES: dict[str, Callable[[], str]] = {
    "policies.md": policy.fields_markdown,
    "topology.md": topology.fields_markdown,
    "report.md": settings.fields_markdown,
}
_BLOCK = re.compile(r"(<!-- fields: [^\n]*-->\n)(.*?)(<!-- /fields -->)", re.S)


def refresh(text: str, table: str) -> str:
    """``text`` with its one generated block replaced by ``table``. ValueError if it has no such block."""
    found = _BLOCK.findall(text)
    if len(found) != 1:
        raise ValueError(f"expected one '<!-- fields: ... -->' ... '<!-- /fields -->' block, found {len(found)}")
    return _BLOCK.sub(lambda m: m.group(1) + table + m.group(3), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller.docs", description="Regenerate the docs' field tables.")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, make in TABLES.items():
        path = DOCS / name
        try:
            text = path.read_text(encoding="utf-8")
            new = refresh(text, make())
        except (OSError, ValueError) as exc:  # e.g. an installed package without docs/
            print(f"{path}: {exc}", file=sys.stderr)
            return 2
        if new == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(new, encoding="utf-8")
            print(f"{path}: table regenerated")
    if args.check and stale:
        print(f"stale: {', '.join(stale)}; run python -m controller.docs", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
