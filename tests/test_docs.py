"""The README and docs/ say only what the code accepts: every ``semfed`` command shown
parses with the real command-line parser (nothing is run), every config key named
exists, and every linked file is there."""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import typing
from pathlib import Path

import pytest

from phy.config import LinkConfig
from semfed.cli import build_parser
from semfed.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SECTIONS = typing.get_type_hints(RunConfig)  # section name -> its dataclass


def _text(path: Path) -> str:
    return path.read_text()


def _fenced_lines(text: str) -> list[str]:
    """The lines of the fenced code blocks, continuation lines (``\\``) joined."""
    out, inside, pending = [], False, ""
    for line in text.splitlines():
        if line.startswith("```"):
            inside, pending = not inside, ""
            continue
        if not inside:
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    return out


# `semfed ...` as a command: at the start of a line, after a prompt or a path
# (.venv/bin/semfed), never inside a word or a module path (semfed.cli).
_COMMAND = re.compile(r"(?:^|(?<=[\s/`$]))semfed(?=\s|$)(.*)")
_SHELL_END = re.compile(r"\s(?:&&|\|\||;|\||>|2>|#)\s")


def commands(text: str) -> list[tuple[str, bool]]:
    """Every ``semfed`` command shown in ``text``: (its arguments, whether it is a whole
    command). Code blocks hold whole commands (not the lines a command prints,
    ``semfed train: error: ...``); inline code spans may name part of one
    (`semfed sweep --seeds N`), whose required arguments may be left out."""
    found = []
    candidates = [(line, True) for line in _fenced_lines(text)]
    candidates += [(m.group(1), False) for m in re.finditer(r"`(semfed [^`]*)`", text)]
    for line, whole in candidates:
        m = _COMMAND.search(line.strip())
        if not m:
            continue
        rest = _SHELL_END.split(" " + m.group(1) + " ")[0].strip()
        if re.match(r"^[a-z-]+:", rest):  # output such as "semfed train: error: ..."
            continue
        found.append((rest, whole))
    return found


def as_argv(rest: str) -> list[str] | None:
    """A command line as argv for the parser, or None for a synopsis too open to parse.

    Synopses are read as the simplest command they allow: optional groups
    (``[--resume]``, ``[DIR ...]``) left out, the first of alternatives
    (``cpu|full``); a line that still says ``...`` is skipped.
    """
    text = rest.replace("\\|", "|")
    while True:  # optional groups, innermost first; TOML lists (=[32,16]) stay
        shorter = re.sub(r"\s\[(?:--?|[A-Z.])[^\[\]]*\]", "", text)
        if shorter == text:
            break
        text = shorter
    if "..." in text:
        return None
    argv = shlex.split(text)
    argv = [a.split("|")[0] if "|" in a and not a.startswith("-") else a for a in argv]
    return [PLACEHOLDERS.get(a, a) for a in argv]


# Placeholders where the parser wants a number; FILE, DIR, KEY and the like pass as text.
PLACEHOLDERS = {"N": "2"}


def strict_parser() -> argparse.ArgumentParser:
    """The real parser, with long options spelled out (no abbreviations: the docs
    must show ``--paired``, not ``--pair``)."""
    parser = build_parser()
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.allow_abbrev = False
    return parser


def _all_commands() -> list[tuple[str, str, bool]]:
    return [(p.relative_to(ROOT).as_posix(), c, w) for p in DOCS for c, w in commands(_text(p))]


def _parseable_commands() -> list[tuple[str, str, bool]]:
    """The commands shown, less synopses with '...' (nothing to parse: not a test case)."""
    return [item for item in _all_commands() if as_argv(item[1]) is not None]


def test_docs_exist_and_show_commands():
    names = {p.name for p in DOCS}
    assert {"README.md", "configuration.md", "radio-link.md", "algorithms.md"} <= names
    assert {"experiments.md", "performance.md", "training.md"} <= names
    shown = _all_commands()
    assert len(shown) > 40
    subcommands = {as_argv(c)[0] for _, c, _ in shown if as_argv(c)}
    assert {"train", "link", "plot", "sweep", "compare", "experiment", "bench"} <= subcommands


@pytest.mark.parametrize(("where", "command", "whole"), _parseable_commands())
def test_every_command_shown_parses(where, command, whole, capsys):
    argv = as_argv(command)
    parser = strict_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version exit 0; a bad command exits 2
        error = capsys.readouterr().err.strip().splitlines()[-1:]
        # an inline span may leave out required arguments, or the value of its last option
        partial = not whole and (
            "the following arguments are required" in "".join(error)
            or (argv[-1].startswith("--") and "expected one argument" in "".join(error))
        )
        assert exit_.code == 0 or partial, f"{where}: semfed {command}: {error}"


def test_the_parser_check_can_fail():
    parser = strict_parser()
    bad_commands = ("train --config c", "link --channels awgn --out d", "bench --rounds x")
    for bad in (*bad_commands, "compare d --by algorithm.name --pair fedcl"):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(as_argv(bad))
        assert exit_.value.code == 2


# ---------------------------------------------------------------- config keys

_FILE_SUFFIXES = ("py", "csv", "png", "pdf", "toml", "json", "jsonl", "npz", "md", "sh", "txt")
_KEY = re.compile(r"(?<![\w./-])(" + "|".join(SECTIONS) + r")\.([a-z_][a-z0-9_]*\*?|\*)(?![\w(])")


def config_keys(text: str) -> set[str]:
    """Every ``section.key`` named in ``text`` (file names like ``link.csv`` left out)."""
    return {f"{section}.{key}" for section, key in _KEY.findall(text) if key not in _FILE_SUFFIXES}


def _key_exists(name: str) -> bool:
    section, key = name.split(".", 1)
    fields = [f.name for f in dataclasses.fields(SECTIONS[section])]
    if key == "*":
        return True
    if key.endswith("*"):
        return any(f.startswith(key[:-1]) for f in fields)
    return key in fields


# The README's example of the one-line error a wrong key gets.
WRONG_ON_PURPOSE = {"training.roundz"}


def test_every_config_key_named_in_the_docs_exists():
    named = {(p.name, k) for p in DOCS for k in config_keys(_text(p)) - WRONG_ON_PURPOSE}
    assert len(named) > 50
    assert {"link.uplink_snr_db", "training.rounds", "algorithm.name"} <= {k for _, k in named}
    missing = sorted(f"{doc}: {key}" for doc, key in named if not _key_exists(key))
    assert missing == []


def test_the_link_key_table_names_link_config_fields():
    text = _text(ROOT / "docs" / "configuration.md")
    table = text.split("### Link keys")[1].split("\n#")[0]
    names = [
        n for row in re.findall(r"^\| (.+?) \|", table, re.M) for n in re.findall(r"`(\w+)`", row)
    ]
    assert len(names) > 15
    fields = {f.name for f in dataclasses.fields(LinkConfig)}
    assert sorted(set(names) - fields) == []


def test_the_key_check_can_fail():
    assert config_keys("set `training.roundz` and link.csv, semfed.data.errors") == {
        "training.roundz"
    }
    assert not _key_exists("training.roundz") and _key_exists("data.synthetic_*")
    assert typing.get_type_hints(RunConfig)["link"] is LinkConfig


# ---------------------------------------------------------------- links


def test_every_linked_file_exists():
    broken = []
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", _text(path)):
            if "://" not in target and not (path.parent / target).exists():
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_every_experiment_file_named_exists():
    named = {
        m for p in DOCS for m in re.findall(r"`(experiments/[\w/.-]+\.(?:toml|sh|py))`", _text(p))
    }
    assert len(named) > 10
    assert sorted(n for n in named if not (ROOT / n).exists()) == []
