"""Every exception medsafe raises on purpose.

- :class:`MedsafeError` -- base of all of them.
  - :class:`SuiteError` -- bad input data; names the file, line and field.
  - :class:`RegistryError` -- an unknown plug-in name (backend, scorer, loader, strategy).
  - :class:`BackendError` -- a model call failed; says whether a retry may help.
  - :class:`StoreError` -- the results database is missing a run or is inconsistent.
  - :class:`ConfigError` -- a bad model spec or config file.
  - :class:`ExecutorError` -- the executor can no longer make model calls; stops the run.
"""

from __future__ import annotations

from pathlib import Path


class MedsafeError(Exception):
    """Base class of medsafe's own errors."""


class SuiteError(MedsafeError):
    """Bad suite input, located as precisely as we can: ``file:line: field: message``."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.reason = message
        where = self.path or "<input>"
        if line is not None:
            where += f":{line}"
        if field:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


class RegistryError(MedsafeError):
    """No plug-in is registered under that name."""


class ConfigError(MedsafeError):
    """A model spec or configuration value is invalid."""


class ExecutorError(MedsafeError):
    """The executor lost every means of making model calls (all Ray workers died): the run
    stops, what was answered is kept; never recorded as an item's failure."""


class StoreError(MedsafeError):
    """The results store cannot answer (unknown run, schema mismatch...)."""


class BackendError(MedsafeError):
    """A model call failed.

    ``retryable`` says whether the runner may try again; ``retry_after`` is the server's
    ``Retry-After`` in seconds when it sent one; ``status_code`` is the HTTP status if any.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status_code = status_code
