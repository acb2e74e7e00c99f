"""The documentation builds with `mkdocs build --strict` (no broken link or reference), and every `rewardlab`
command it shows, and every file of examples/ it names, is one a user can run."""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from rewardlab.cli import COMMANDS, build_command_parser

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
INLINE = re.compile(r"`((?:rewardlab|torchrun|accelerate launch|python -m rewardlab)[^`\n]*)`")


def shell_lines(text: str) -> list[str]:
    """The lines of the page's shell blocks (```bash, or no language), continuation lines joined."""
    lines, language, block = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if language is None:
                language, block = line[3:].strip(), []
            else:
                if language in ("bash", "sh", ""):
                    lines += "\n".join(block).replace("\\\n", " ").splitlines()
                language = None
        elif language is not None:
            block.append(line)
    return lines


def documented_commands() -> list[tuple[str, str]]:
    """(page, command line) for every `rewardlab <command> ...` in a shell block or an inline code span."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        lines = shell_lines(text) + INLINE.findall(text)
        for line in lines:
            line = line.split(" #", 1)[0]
            for part in re.split(r"&&|;|\|", line):
                if re.search(r"(^|\s)(-m )?rewardlab (\w+)", part):
                    found.append((page.relative_to(REPO).as_posix(), part.strip()))
    return found


def rewardlab_argv(line: str) -> list[str] | None:
    tokens = shlex.split(line)
    start = next((k for k, t in enumerate(tokens) if t == "rewardlab"), None)
    if start is None or start + 1 >= len(tokens):
        return None
    return [t for t in tokens[start + 1 :] if t != "..."]


def test_the_docs_show_many_commands():
    commands = {rewardlab_argv(line)[0] for _, line in documented_commands() if rewardlab_argv(line)}
    assert set(COMMANDS) <= commands  # every command is shown at least once


@pytest.mark.parametrize(("page", "line"), documented_commands())
def test_every_documented_flag_is_the_commands_own(page, line):
    """Prose may name a command with only some of its flags; every flag it names must be one the command has, by
    its current name."""
    argv = rewardlab_argv(line)
    assert argv and argv[0] in COMMANDS, f"{page}: `{line}` names no rewardlab command"
    parser = build_command_parser(argv[0])
    for flag in (token.split("=", 1)[0] for token in argv[1:] if token.startswith("--")):
        assert flag in parser._option_string_actions, f"{page}: `{line}`: {argv[0]} has no {flag}"


def test_the_docs_use_no_deprecated_flag_name(caplog):
    for page, line in documented_commands():
        argv = rewardlab_argv(line)
        with caplog.at_level(logging.WARNING, logger="rewardlab"):
            build_command_parser(argv[0]).canonical_argv(argv[1:])
        assert "deprecated" not in caplog.text, f"{page}: `{line}` uses a deprecated flag name"


def test_every_example_the_docs_name_exists():
    for page in PAGES:
        for path in re.findall(r"\bexamples/[\w./-]*\w", page.read_text(encoding="utf-8")):
            assert (REPO / path).exists(), f"{page.name} names {path}, which does not exist"


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert all(f"rewardlab {name}" in cli for name in COMMANDS) and "--adam_beta1" in cli
    api = (tmp_path / "site" / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert "RewardTrainer" in api and "score_pairs" in api


def benchmarks_summary() -> str:
    text = (REPO / "BENCHMARKS.md").read_text(encoding="utf-8")
    start = text.index("\n## Summary\n")
    return text[start : text.index("\n## ", start + 1)]


def test_every_number_the_readme_quotes_is_in_the_benchmarks_summary():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quoted = set(re.findall(r"\b\d+\.\d+x\b|\b0\.\d{3}\b", readme))
    assert {"3.01x", "3.32x", "4.16x", "0.574"} <= quoted  # the claims of the first screen
    summary = benchmarks_summary()
    missing = sorted(number for number in quoted if number not in summary)
    assert not missing, f"README quotes {missing}, which BENCHMARKS.md's summary table does not give"


@pytest.mark.parametrize("page", ["README.md", "docs/quickstart.md"])
def test_the_python_quickstart_shown_is_the_tested_example(page):
    text = (REPO / page).read_text(encoding="utf-8")
    start = text.index("```python\nfrom importlib.resources") + len("```python\n")
    code = text[start : text.index("```\n", start)]
    example = (REPO / "examples" / "quickstart.py").read_text(encoding="utf-8")
    assert example.endswith(code)


def test_the_readmes_links_resolve():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", readme):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        assert (REPO / path).exists(), f"README links to {path}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", (REPO / path).read_text(encoding="utf-8"), re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
            assert anchor in slugs, f"README links to {target}, a heading {path} does not have"
