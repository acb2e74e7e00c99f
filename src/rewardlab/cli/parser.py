"""The flag vocabulary every `rewardlab` command shares, enforced by its argument parsers rather than by convention.

- A bad flag raises `UsageError`, printed by `rewardlab.cli.main` as one line (argparse would print usage and exit).
- A boolean is `--flag` / `--no_flag`, and `--flag true|false` works too, in every command: `add_argument` turns
  `action="store_true"` and `HfArgumentParser`'s boolean fields into one `BooleanFlag`.
- Flags are spelt with underscores in help; the dashed spelling (`--output-dir`) is accepted everywhere.
- A renamed flag keeps its old name as a deprecated alias for one release: it works, says its new name on stderr,
  and is left out of the help.
- Help shows every default and marks required flags, without "(default: None)".

argparse does none of the last four by itself, and `HfArgumentParser` does the first two its own way (it registers
dashed copies of each flag and a `--no_` flag only for booleans that default to true); this module makes both
parsers agree.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rewardlab.errors import UsageError

logger = logging.getLogger("rewardlab.cli")

# The release that drops the deprecated aliases.
ALIASES_REMOVED_IN = "0.2.0"


class BooleanFlag(argparse.Action):
    """`--name` (true), `--name true|false`, or `--no_name` (false), as one action with both option strings."""

    def __init__(self, option_strings: Sequence[str], dest: str, default: Any = False, **kwargs: Any):
        positive = [s for s in option_strings if not s.startswith("--no_")]
        negative = [f"--no_{s[2:]}" for s in positive if s.startswith("--")]
        kwargs.pop("nargs", None)
        kwargs.pop("const", None)
        kwargs.pop("type", None)
        kwargs.setdefault("metavar", "true|false")
        super().__init__(positive + negative, dest, nargs="?", default=default, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string=None):
        if option_string and option_string.startswith("--no_"):
            if values is not None:
                raise UsageError(f"{option_string} takes no value (see `{parser.prog} --help`)")
            setattr(namespace, self.dest, False)
            return
        if values is None:
            setattr(namespace, self.dest, True)
            return
        from transformers.hf_argparser import string_to_bool  # the spellings `rewardlab train` always took

        try:
            setattr(namespace, self.dest, string_to_bool(values))
        except argparse.ArgumentTypeError as e:
            raise UsageError(
                f"argument {option_string}: expected true or false, got {values!r} (see `{parser.prog} --help`)"
            ) from e


class HelpFormatter(argparse.HelpFormatter):
    """Help that shows each flag's default, marks required flags, and leaves out what says nothing ("default:
    None", an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.required:
            return text + (" (required)" if "required" not in text.lower() else "")
        default = action.default
        shown = default not in (None, argparse.SUPPRESS, [], "") and "%(default)" not in text
        if shown and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            value = str(default).lower() if isinstance(default, bool) else "%(default)s"
            text += f" (default: {value})"
        return text

    def _get_default_metavar_for_optional(self, action: argparse.Action) -> str:
        return action.option_strings[0].lstrip("-").upper()  # the flag's name, not its field's (--model MODEL)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, BooleanFlag):  # "--flag [true|false], --no_flag": only the first takes a value
            positive = [s for s in action.option_strings if not s.startswith("--no_")]
            negative = [s for s in action.option_strings if s.startswith("--no_")]
            return ", ".join([f"{s} [{action.metavar}]" for s in positive] + negative)
        return super()._format_action_invocation(action)


class _VocabularyMixin:
    """What both parser classes below share: one-line errors, one boolean syntax, dashes and deprecated aliases."""

    deprecated_flags: Mapping[str, str] = {}  # old flag -> new flag; replaced, never mutated, by `deprecate`

    def error(self, message: str):
        raise UsageError(f"{message} (see `{self.prog} --help`)")

    def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action | None:
        flag = kwargs.pop("flag", None)  # a field's canonical flag when it is not `--<field name>`
        names = tuple(n for n in names if not _is_dashed_copy(n, names))
        if flag is not None:  # the field keeps its name as the destination, and its own flag as an alias
            kwargs.setdefault("dest", names[0].lstrip("-"))
            names = (flag,) + tuple(n for n in names if n != flag)
        if kwargs.get("action") == "store_false" and names and names[0].startswith("--no_"):
            return None  # HfArgumentParser's `--no_` complement: the BooleanFlag already has it
        if kwargs.get("action") == "store_true":
            kwargs.pop("action")
            return super().add_argument(*names, action=BooleanFlag, **kwargs)
        if _is_hf_boolean(kwargs.get("type")):  # default None (a `bool | None` field) stays None: "unset"
            return super().add_argument(*names, action=BooleanFlag, default=kwargs.pop("default", None), **kwargs)
        return super().add_argument(*names, **kwargs)

    def deprecate(self, old: str, new: str) -> None:
        """Keep `old` working as `new` for one release; using it says so on stderr."""
        self.deprecated_flags = {**self.deprecated_flags, old: new}

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None):
        if args is not None:
            args = self.canonical_argv(args)
        return super().parse_known_args(args, namespace)

    def canonical_argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` with dashed flags spelt with underscores and deprecated names replaced, saying so on stderr."""
        known = set(self._option_string_actions)
        renamed = self.deprecated_flags
        out = []
        for token in argv:
            if token == "--":
                out.extend(argv[len(out) :])
                break
            if token.startswith("--"):
                name, eq, value = token.partition("=")
                underscored = "--" + name[2:].replace("-", "_")
                if name not in known and underscored in known | set(renamed):
                    name = underscored
                if name in renamed:
                    logger.warning(
                        "%s is deprecated: use %s (the old name goes in rewardlab %s)",
                        name,
                        renamed[name],
                        ALIASES_REMOVED_IN,
                    )
                    name = renamed[name]
                token = name + eq + value
            out.append(token)
        return out


class ArgumentParser(_VocabularyMixin, argparse.ArgumentParser):
    """argparse's parser with rewardlab's flag vocabulary (see the module's docstring)."""

    def __init__(self, *args: Any, deprecated: Mapping[str, str] | None = None, **kwargs: Any):
        kwargs.setdefault("allow_abbrev", False)  # a typo must not silently match a longer flag
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        for old, new in (deprecated or {}).items():
            self.deprecate(old, new)


def dataclass_parser(
    dataclass_types: tuple[type, ...], deprecated: Mapping[str, str] | None = None, **kwargs: Any
) -> argparse.ArgumentParser:
    """`transformers.HfArgumentParser` over `dataclass_types` (a flag per field, help from its metadata) with
    rewardlab's flag vocabulary. A field's metadata may name its canonical flag (`"flag": "--model"`)."""
    from transformers import HfArgumentParser

    kwargs.setdefault("allow_abbrev", False)
    kwargs.setdefault("formatter_class", HelpFormatter)
    parser_class = type("DataclassArgumentParser", (_VocabularyMixin, HfArgumentParser), {})
    parser = parser_class(dataclass_types, **kwargs)
    for old, new in (deprecated or {}).items():
        parser.deprecate(old, new)
    return parser


def _is_dashed_copy(name: str, names: Sequence[str]) -> bool:
    return name.startswith("--") and "-" in name[2:] and "--" + name[2:].replace("-", "_") in names


def _is_hf_boolean(type_: Any) -> bool:
    """Whether `type_` is the one HfArgumentParser gives boolean fields (looked up only once transformers is
    imported: it is slow to import, and `rewardlab --help` must be instant)."""
    module = sys.modules.get("transformers.hf_argparser")
    return type_ is not None and module is not None and type_ is getattr(module, "string_to_bool", None)
