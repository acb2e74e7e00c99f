"""mkdocs hook: writes the docs' command-line reference (reference/cli.md) from the commands' own argument parsers,
so it can never disagree with `rewardlab <command> --help`, and adds the figures that BENCHMARKS.md (included whole
by the benchmarks page) links to at the same relative paths, so that its links work on the site as on GitHub."""

from __future__ import annotations

import functools
from pathlib import Path

from mkdocs.structure.files import File, Files

PAGE = "reference/cli.md"
REPOSITORY = Path(__file__).resolve().parent.parent
FIGURES = ("benchmarks/time_to_accuracy.png",)


def cli_reference() -> str:
    """Every command's help, as `rewardlab <command> --help` prints it (`train`: `--help_all`)."""
    from rewardlab.cli import COMMANDS, build_command_parser
    from rewardlab.cli.train import build_parser as build_train_parser

    parts = [
        "# Command line\n",
        "Generated from the commands' own parsers when the docs are built. Every flag also takes its dashed "
        "spelling (`--output-dir`); a boolean is `--flag`, `--flag true|false` or `--no_flag`.\n",
    ]
    for name, (summary, _) in COMMANDS.items():
        parser = build_train_parser(help_all=True) if name == "train" else build_command_parser(name)
        # argparse wraps help to the terminal it runs in; the page's width is fixed instead.
        parser.formatter_class = functools.partial(parser.formatter_class, width=110)
        parts += [f"## rewardlab {name}\n", f"{summary}\n", "```text", parser.format_help().rstrip(), "```\n"]
    return "\n".join(parts)


def on_files(files: Files, config) -> Files:
    files.append(File.generated(config, PAGE, content=cli_reference()))
    for figure in FIGURES:
        files.append(File.generated(config, figure, abs_src_path=str(REPOSITORY / figure)))
    return files
