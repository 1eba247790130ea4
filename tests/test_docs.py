"""docs/*.md field tables are generated from the definitions; stale ones fail here."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller import docs

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(docs.TABLES))
def test_docs_tables_are_current(name: str) -> None:
    text = (ROOT / "docs" / name).read_text(encoding="utf-8")
    assert docs.refresh(text, docs.TABLES[name]()) == text, f"docs/{name} is stale: run python -m controller.docs"
    assert docs.TABLES[name]().count("\n") > 3


def test_refresh_replaces_only_the_table() -> None:
    text = "intro\n<!-- fields: generated -->\n| old | table |\n<!-- /fields -->\nafter\n"
    assert docs.refresh(text, "| new |\n") == "intro\n<!-- fields: generated -->\n| new |\n<!-- /fields -->\nafter\n"
    with pytest.raises(ValueError, match="found 0"):
        docs.refresh("no table here", "| new |\n")


def test_check_reports_a_stale_table_and_writing_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in docs.TABLES:
        (tmp_path / name).write_text("x\n<!-- fields: generated -->\n| stale |\n<!-- /fields -->\n", encoding="utf-8")
    monkeypatch.setattr(docs, "DOCS", tmp_path)
    assert docs.main(["--check"]) == 1
    assert "stale: policies.md, topology.md" in capsys.readouterr().err
    assert docs.main([]) == 0
    assert docs.main(["--check"]) == 0
    assert docs.TABLES["topology.md"]() in (tmp_path / "topology.md").read_text(encoding="utf-8")


def test_a_missing_docs_folder_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(docs, "DOCS", tmp_path / "nowhere")
    assert docs.main(["--check"]) == 2
    assert "No such file" in capsys.readouterr().err
