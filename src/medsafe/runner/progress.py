"""Progress display that costs the hot path nothing but integer increments.

Workers bump counters on a :class:`Counters`; a separate asyncio task copies them into a rich
progress bar a few times a second. Nothing is rendered per item.
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


@contextlib.asynccontextmanager
async def live_progress(
    description: str, counters: Counters, *, enabled: bool, console: Console | None = None
) -> AsyncIterator[None]:
    """Show ``counters`` as a progress bar while the body runs (no-op when disabled)."""
    if not enabled:
        yield
        return
    from rich.console import Console
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
        console=console or Console(stderr=True),
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
