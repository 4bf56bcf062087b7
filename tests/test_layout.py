"""The package layout DESIGN.md fixes: phy knows nothing of semfed, the library not its CLI."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _offenders(files, banned: str) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in sorted(_imports(path))
        if name == banned or name.startswith(banned + ".")
    ]


def test_the_library_does_not_import_its_command_line():
    library = [
        p
        for p in (ROOT / "semfed").rglob("*.py")
        if "cli" not in p.relative_to(ROOT / "semfed").parts and p.name != "__main__.py"
    ]
    assert len(library) > 20
    assert _offenders(library, "semfed.cli") == []


def test_phy_does_not_import_semfed():
    files = list((ROOT / "phy").rglob("*.py"))
    assert len(files) > 10
    assert _offenders(files, "semfed") == []
