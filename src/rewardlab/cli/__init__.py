"""The `rewardlab` command: one module per subcommand (`train`, `demo`, `eval`, `score`, `serve`), each a `main(argv)`
that wires the library together, and `common`, what they share.

User errors (bad flags, paths, data, models) are printed as one line, `rewardlab: error: <message>`, with exit code 2;
anything else is a bug and keeps its traceback. A subcommand's module (and with it torch and transformers) is
imported only when it runs, so `rewardlab --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rewardlab._version import __version__
from rewardlab.cli.common import one_line, rewardlab_logging
from rewardlab.cli.parser import ArgumentParser
from rewardlab.errors import InvalidRowError, RewardlabError

# The commands that read data files take --skip_invalid_rows; their one-line error for a bad row says so.
SKIPPING_COMMANDS = ("train", "eval", "score")

# name -> (one-line description, module of `rewardlab.cli` whose `main(argv)` runs it).
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("Train a reward model (every RewardConfig / TrainingArguments flag works).", "train"),
    "demo": ("Train MiniLM on the bundled HH-RLHF pairs and print held-out accuracy before and after.", "demo"),
    "eval": ("Evaluate reward models on preference data; write report.json and report.html with plots.", "eval"),
    "score": ("Score a data file (texts, prompt/completion or pairs) and write it back with reward columns.", "score"),
    "serve": ("Serve a reward model over HTTP (POST /score, OpenRLHF's POST /get_reward, GET /health).", "serve"),
    "export": (
        "Write a multi-objective reward model as an ordinary num_labels=1 one (an objective, or weights).",
        "export",
    ),
}


def build_main_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="rewardlab",
        description="Train Bradley-Terry reward models (a drop-in for TRL's RewardTrainer).",
        epilog="Run `rewardlab <command> --help` for a command's flags.",
    )
    parser.add_argument("--version", action="version", version=f"rewardlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="command")
    for name, (description, _) in COMMANDS.items():
        commands.add_parser(name, help=description, add_help=False)
    return parser


def build_command_parser(name: str) -> argparse.ArgumentParser:
    """The argument parser of `rewardlab <name>` (the CLI reference in the docs is generated from these)."""
    return importlib.import_module(f"rewardlab.cli.{COMMANDS[name][1]}").build_parser()


def dispatch(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        parser = build_main_parser()
        if not argv:
            parser.print_help()
            return 2
        parser.parse_args(argv)  # --help / --version exit here; an unknown command raises UsageError
        return 2
    command = importlib.import_module(f"rewardlab.cli.{COMMANDS[argv[0]][1]}")
    with rewardlab_logging():
        return command.main(argv[1:])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `rewardlab` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return dispatch(argv)
    except SystemExit as e:  # argparse's --help and --version
        return e.code if isinstance(e.code, int) else 0
    except (RewardlabError, OSError) as e:  # OSError includes FileNotFoundError and bad model paths
        hint = ""
        if isinstance(e, InvalidRowError) and argv[:1] and argv[0] in SKIPPING_COMMANDS:
            hint = " (--skip_invalid_rows skips such rows, counted per reason)"
        print(f"rewardlab: error: {one_line(e)}{hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rewardlab: interrupted", file=sys.stderr)
        return 130
