"""Progress display that costs the hot path nothing but integer increments.

Workers bump counters on a :class:`Counters`; a separate asyncio task copies them into a rich
progress bar a few times a second or, when the console is not a terminal (a log, CI), prints one
plain line every :data:`PLAIN_INTERVAL_S` seconds. Nothing is rendered per item.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

PLAIN_INTERVAL_S = 10.0
"""Seconds between two plain progress lines (a console that is not a terminal)."""


@dataclass
class Counters:
    """Running totals of one phase (generation or scoring)."""

    total: int
    done: int = 0
    failed: int = 0
    cached: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter)

    def rate(self) -> float:
        """Items per second so far."""
        elapsed = time.perf_counter() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0


def plain_line(description: str, counters: Counters) -> str:
    """One log-friendly progress line: ``generate: 12/30 (40%) 1.5 items/s, 8s elapsed``."""
    total = counters.total
    share = f" ({100 * counters.done / total:.0f}%)" if total else ""
    elapsed = time.perf_counter() - counters.started
    extras = "".join(
        f", {name} {value}"
        for name, value in (("cached", counters.cached), ("failed", counters.failed))
        if value
    )
    return (
        f"{description}: {counters.done}/{total or '?'}{share} "
        f"{counters.rate():.1f} items/s, {elapsed:.0f}s elapsed{extras}"
    )


@contextlib.asynccontextmanager
async def _plain_progress(
    description: str, counters: Counters, console: Console, interval_s: float
) -> AsyncIterator[None]:
    """Print :func:`plain_line` every ``interval_s`` seconds while the body runs, and once at
    the end (only if a line was printed before, so a short phase stays quiet)."""
    printed = [False]

    async def pump() -> None:
        while True:
            await asyncio.sleep(interval_s)
            console.print(plain_line(description, counters), markup=False, highlight=False)
            printed[0] = True

    pumper = asyncio.create_task(pump())
    try:
        yield
    finally:
        pumper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumper
        if printed[0]:
            console.print(plain_line(description, counters), markup=False, highlight=False)


@contextlib.asynccontextmanager
async def live_progress(
    description: str,
    counters: Counters,
    *,
    enabled: bool,
    console: Console | None = None,
    interval_s: float = PLAIN_INTERVAL_S,
) -> AsyncIterator[None]:
    """Show ``counters`` while the body runs: a progress bar on a terminal, else a plain line
    every ``interval_s`` seconds (no-op when disabled)."""
    if not enabled:
        yield
        return
    from rich.console import Console

    console = console or Console(stderr=True)
    if not console.is_terminal:
        async with _plain_progress(description, counters, console, interval_s):
            yield
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]:.1f} items/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("tokens {task.fields[tokens]:,}  cached {task.fields[cached]}"),
        TextColumn("[red]failed {task.fields[failed]}"),
        console=console,
        refresh_per_second=4,
        transient=False,
    )
    task = progress.add_task(
        description, total=counters.total, rate=0.0, tokens=0, cached=0, failed=0
    )

    def sync() -> None:
        progress.update(
            task,
            total=counters.total or None,
            completed=counters.done,
            rate=counters.rate(),
            tokens=counters.tokens,
            cached=counters.cached,
            failed=counters.failed,
        )

    async def pump() -> None:
        while True:
            sync()
            await asyncio.sleep(0.25)

    with progress:
        pumper = asyncio.create_task(pump())
        try:
            yield
        finally:
            pumper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumper
            sync()
