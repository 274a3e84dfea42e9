"""Where the commands write their output files (``export -o``, ``report -o``, ``report --pdf``).

``-`` is standard output. A regular file (new or existing) is written beside itself as
``NAME.part`` and renamed over it at the end, so a failure leaves the old file; replacing one is
announced. An existing device or pipe (``/dev/null``, ``/dev/full``) is written in place, never
replaced by a regular file. A directory, or a missing folder, is refused before any work.
"""

from __future__ import annotations

import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from medsafe.errors import MedsafeError

__all__ = ["OutputError", "check_output", "is_stdout", "open_text", "staged", "stderr_note"]

STDOUT = "-"


class OutputError(MedsafeError):
    """An output file cannot be written (bad target or an OS error); names the path."""


def is_stdout(path: Path | str) -> bool:
    """Whether ``path`` is ``-`` (standard output)."""
    return str(path) == STDOUT


def _mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputError(f"{path}: cannot write here: {exc.strerror or exc}") from exc


def check_output(path: Path, *, stdout_ok: bool = True) -> None:
    """Raise OutputError unless ``path`` can take an output file (call it before the work)."""
    if is_stdout(path):
        if not stdout_ok:
            raise OutputError("this output cannot be written to standard output ('-')")
        return
    mode = _mode(path)
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputError(f"{path}: is a directory; give a file name")
    if mode is None and not path.absolute().parent.is_dir():
        raise OutputError(f"{path}: no such folder {path.absolute().parent}")


@contextmanager
def staged(path: Path, notify: Callable[[str], None]) -> Iterator[Path]:
    """A regular file to write the output of ``path`` to; moved or copied there on success.

    ``notify`` gets one line when an existing file is replaced. OS errors become OutputError;
    nothing partial is left behind.
    """
    check_output(path)
    mode = None if is_stdout(path) else _mode(path)
    if mode is None or stat.S_ISREG(mode):
        target = path
        tmp = path.with_name(path.name + ".part")
        folder = None
    else:  # stdout, or a device or pipe: write a temporary file, then copy it over
        folder = tempfile.mkdtemp(prefix="medsafe-")
        tmp = Path(folder) / "output"
    try:
        try:
            yield tmp
            if folder is None:
                if mode is not None:
                    notify(f"replacing existing file {path}")
                tmp.replace(target)
            elif is_stdout(path):
                with tmp.open("rb") as source:
                    shutil.copyfileobj(source, sys.stdout.buffer)
                sys.stdout.buffer.flush()
            else:
                with tmp.open("rb") as source, path.open("wb") as sink:
                    shutil.copyfileobj(source, sink)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


@contextmanager
def open_text(path: Path, notify: Callable[[str], None]) -> Iterator[TextIO]:
    """A UTF-8 text stream for the output ``path``: standard output for ``-``, else as
    :func:`staged` (a device is written in place, as a stream)."""
    if is_stdout(path):
        try:
            yield sys.stdout
            sys.stdout.flush()
        except OSError as exc:
            raise OutputError(f"standard output: cannot write: {exc.strerror or exc}") from exc
        return
    mode = _mode(path)
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        try:
            with path.open("w", encoding="utf-8") as handle:
                yield handle
        except OSError as exc:
            raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
        return
    with staged(path, notify) as tmp:
        try:
            with tmp.open("w", encoding="utf-8") as handle:
                yield handle
        except OSError as exc:
            raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from exc


def stderr_note(text: str) -> None:
    """The default ``notify``: one line on standard error."""
    print(f"note: {text}", file=sys.stderr)
