"""The Markdown documentation: every relative link and image resolves, and every
``scripts/…``, ``docs/…``, ``tests/…`` or ``welavae/…`` path it names exists (a bare
```test_x.py``` names ``tests/test_x.py``).

Checked files: ``*.md`` in the repository root (README.md, CONTRIBUTING.md) and
``docs/*.md``.  A link or image target is resolved against the directory of the
Markdown file that holds it (as GitHub renders it); a ``scripts/…`` or
``docs/…`` path named in the text — prose, inline code or a command in a code
block — is a path from the repository root, where the commands run.  URLs
(``https:``, ``mailto:``) and in-page anchors are not followed.  The checker
itself is tested first, on a small Markdown text with known broken targets.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: [text](target) and ![alt](target); the target ends at whitespace (an optional "title" follows) or ")".
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
#: [label]: target (reference-style definitions).
_REF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
#: scripts/… or docs/… not preceded by a path or word character (so not inside a URL or welavae/docs/…);
#: the path ends with a word character or "/" (sentence punctuation after it is not part of it).
_NAMED = re.compile(r"(?<![\w./-])((?:scripts|docs|tests|welavae)/(?:[\w.\-/]*[\w/])?)")
#: A test file named alone, in inline code: `test_config.py`.
_TEST_FILE = re.compile(r"`(test_\w+\.py)`")
_EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # https:, mailto:, …


def markdown_files(root: Path = ROOT) -> list[Path]:
    return sorted(root.glob("*.md")) + sorted((root / "docs").glob("*.md"))


def broken_targets(text: str, md_dir: Path, root: Path) -> list[str]:
    """The relative link/image targets and named ``scripts/``/``docs/`` paths of ``text`` that do not exist.

    ``md_dir``: the directory of the Markdown file (links resolve against it);
    ``root``: the repository root (named paths resolve against it).
    """
    broken = []
    for target in [*_LINK.findall(text), *_REF.findall(text)]:
        if _EXTERNAL.match(target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        if path.startswith("/") or not (md_dir / path).exists():
            broken.append(f"link {target}")
    for match in _NAMED.finditer(text):
        named = match.group(1)
        if text[match.end():match.end() + 1] == "<":  # a pattern such as tests/test_data_<name>.py
            continue
        if not (root / named).exists():
            broken.append(f"path {named}")
    for named in _TEST_FILE.findall(text):
        if not (root / "tests" / named).exists():
            broken.append(f"path tests/{named}")
    return broken


def test_the_checker_finds_each_broken_target_and_only_those(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.md").write_text("x")
    (tmp_path / "docs" / "fig.png").write_bytes(b"")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "tool.py").write_text("")
    text = (
        "See [here](here.md#a-section) and ![a figure](fig.png) and [the site](https://example.org/docs/none.md).\n"
        "[jump](#top), [ref]: here.md\n"
        "Run `python scripts/tool.py docs/` or scripts/tool.py.\n"
        "Broken: [gone](gone.md), ![lost](img/lost.png \"title\"), [abs](/etc/passwd),\n"
        "`python scripts/missing.py`, and docs/nothing.json.\n"
        "[old]: ../README.md\n"
        "Code in welavae/gone.py, tested by tests/test_gone.py and `test_lost.py`; tests/test_data_<name>.py.\n"
    )
    assert broken_targets(text, tmp_path / "docs", tmp_path) == [
        "link gone.md",
        "link img/lost.png",
        "link /etc/passwd",
        "link ../README.md",
        "path scripts/missing.py",
        "path docs/nothing.json",
        "path welavae/gone.py",
        "path tests/test_gone.py",
        "path tests/test_lost.py",
    ]


def test_the_checked_files_include_the_readme_contributing_and_docs():
    names = {p.relative_to(ROOT).as_posix() for p in markdown_files()}
    assert {"README.md", "CONTRIBUTING.md", "docs/cli.md", "docs/results.md"} <= names


@pytest.mark.parametrize("md", markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_and_named_path_exists(md):
    assert broken_targets(md.read_text(encoding="utf-8"), md.parent, ROOT) == []


def test_readme_is_one_screen_with_both_set_up_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 160
    assert "make reproduce" in text and "make test" in text


#: A test named by its file and function: tests/test_cli.py::test_version.
_TEST_NAMED = re.compile(r"(?<![\w./-])(tests/test_\w+\.py)::(\w+)")


def missing_tests(text: str, root: Path = ROOT) -> list[str]:
    """The ``tests/file.py::name`` of ``text`` whose file does not define ``def name(``."""
    missing = []
    for path, name in _TEST_NAMED.findall(text):
        file = root / path
        if not file.exists() or not re.search(rf"^def {name}\(", file.read_text(encoding="utf-8"), re.MULTILINE):
            missing.append(f"{path}::{name}")
    return missing


def test_the_test_checker_finds_each_missing_test(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_here(tmp_path):\n    pass\n\n\ndef helper():\n    pass\n")
    text = ("`tests/test_a.py::test_here`, tests/test_a.py::test_gone, tests/test_a.py::test_her, "
            "tests/test_b.py::test_x, and (not a test reference) welavae/tests/test_a.py::x.")
    assert missing_tests(text, tmp_path) == ["tests/test_a.py::test_gone", "tests/test_a.py::test_her",
                                             "tests/test_b.py::test_x"]


@pytest.mark.parametrize("md", markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_test_a_document_names_exists(md):
    # docs/reliability.md proves each guarantee by a test's name: a renamed or deleted test must not leave it.
    assert missing_tests(md.read_text(encoding="utf-8")) == []
