"""Argument parsing for the ``ador`` command: one-line usage errors, whole numbers checked,
defaults shown in every option's help, choices imported only when an option or its help needs them."""
from __future__ import annotations

import argparse
import re
from typing import Any, Iterator, NoReturn, Sequence

from ador.errors import AdorError


class UsageError(AdorError):
    """A command line argparse refused, in ador's one-line form."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``ador: error: --flag=value: reason``, and exit
    status 2 through ``ador.cli.main`` (no usage dump)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(_one_line(message, self.prog))

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        # argparse renders a new option's metavar once, to check it, which would list (and so
        # import) lazy choices: a placeholder stands in for that check, help lists them later
        lazy = isinstance(kwargs.get("choices"), LazyChoices) and "metavar" not in kwargs
        if lazy:
            kwargs["metavar"] = "CHOICE"
        action = super().add_argument(*args, **kwargs)
        if lazy:
            action.metavar = None
        return action


class LazyChoices(Sequence[str]):
    """An option's choices, a module's sequence of names imported when first asked for (a value
    given, help shown): building the parser imports none of the modules they come from."""

    def __init__(self, *, module: str, name: str) -> None:
        self.module, self.name = module, name
        self._items: tuple[str, ...] | None = None

    def _names(self) -> tuple[str, ...]:
        if self._items is None:
            import importlib
            self._items = tuple(getattr(importlib.import_module(self.module), self.name))
        return self._items

    def __getitem__(self, index: Any) -> Any:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, value: object) -> bool:
        return value in self._names()


def _one_line(message: str, prog: str) -> str:
    m = re.fullmatch(r"argument ([^:]+): (.*)", message, flags=re.S)
    if not m:
        return f"{prog}: {message}"
    flag = m.group(1).split("/")[-1]
    reason = m.group(2)
    choice = re.fullmatch(r"invalid choice: (.*) \(choose from (.*)\)", reason, flags=re.S)
    if choice:
        return f"{flag}={choice.group(1)}: unknown (known: {choice.group(2).replace(chr(39), '')})"
    if reason.startswith("="):                       # from the types below: =value: reason
        return f"{flag}{reason}"
    return f"{flag}: {reason}"


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that ends with the default of every option that has one (not None, not a flag)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or default in (None, False, argparse.SUPPRESS) or action.option_strings == []
                or isinstance(action, (argparse._StoreTrueAction, argparse._HelpAction))):
            return text
        return f"{text} (default: %(default)s)"


def _whole(text: str, least: int, most: int | None = None, beyond: str = "") -> int:
    """A whole number >= ``least`` (and <= ``most``, else ``beyond`` says why)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"={text!r}: expected a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"={value}: must be >= {least}")
    if most is not None and value > most:
        raise argparse.ArgumentTypeError(f"={value}: {beyond}")
    return value


def count(text: str) -> int:
    """A whole number >= 1 (trials, workers, batch, lengths, degrees)."""
    return _whole(text, 1)


def seed(text: str) -> int:
    """A random seed: 0 .. 2**32 - 1."""
    from ador.config import MAX_SEED
    return _whole(text, 0, MAX_SEED, f"a seed is 0..{MAX_SEED}")


def share(text: str) -> float:
    """A share of a whole: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"={text!r}: expected a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"={text}: a share is in (0, 1]")
    return value


def trials(text: str) -> int:
    """A trial budget: 1 .. 2**53, as a study file's ``trials``."""
    from ador.config import MAX_INT
    return _whole(text, 1, MAX_INT, "at most 2**53 trials")


def trial_number(text: str) -> int:
    """A trial's number: 0 .. 2**53 (databases store it as a 64-bit integer)."""
    from ador.config import MAX_INT
    return _whole(text, 0, MAX_INT, "no study has that many trials")


def port(text: str) -> int:
    return _whole(text, 0, 65535, "a port is 0..65535 (0: any free port)")
