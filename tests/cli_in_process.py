"""`steerway ARGS` run inside the test's own process, as the installed command runs it.

The `steerway` script is `sys.exit(main())`; calling `main` here gives the same exit code and
output without a Python start and the CLI's imports (about a second each on a busy machine).
Tests of what only a separate process shows (signals, a server's lifetime, the script itself)
still start one.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping

from server.cli import main

# Warnings an interpreter started as `steerway` prints (its default filters hide these).
_HIDDEN_BY_DEFAULT = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


@contextlib.contextmanager
def _environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """`changes` in the environment for the block: a value of None unsets the variable."""
    saved = {name: os.environ.get(name) for name in changes}
    for name, value in changes.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _standard_input(text: str) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved


def run_cli(
    *args: str, env: Mapping[str, str | None], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The exit code, standard output and standard error of `steerway ARGS` with `env` applied
    to this process's environment and `stdin` as its standard input (never a terminal).
    Warnings the command raises are written to its standard error, as the command's own process
    would print them."""
    out, err = io.StringIO(), io.StringIO()
    with (
        _environment(env),
        _standard_input(stdin or ""),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        warnings.catch_warnings(record=True) as raised,
    ):
        warnings.simplefilter("default")
        try:
            main(list(args))
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
            if isinstance(exit.code, str):
                print(exit.code, file=err)
    for warning in raised:
        if not issubclass(warning.category, _HIDDEN_BY_DEFAULT):
            err.write(
                warnings.formatwarning(
                    str(warning.message), warning.category, warning.filename, warning.lineno
                )
            )
    return subprocess.CompletedProcess(["steerway", *args], code, out.getvalue(), err.getvalue())
