"""The egress policy: no items with personal identifiers go to a remote endpoint unasked.

A run checks every item it will send *before* any request is made. An endpoint is loopback
only when its host is literally ``localhost``, an address in 127.0.0.0/8 or ``::1`` (a host
name that merely resolves to 127.0.0.1 is remote: resolution can change). Policies:

- ``off``: no check.
- ``warn``: findings are reported; the run goes on.
- ``block`` (the default when any endpoint is remote): identifiers (every type but ``person``
  and ``date``) refuse the run with :class:`EgressRefused` (exit 2) unless ``allow_phi``; names
  only warn; non-birth dates are not reported.

With only loopback endpoints the default is ``off``.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from medsafe.dataethics.entities import BLOCKING, WARNING, Finding
from medsafe.dataethics.scan import ScanConfig, scan_items
from medsafe.errors import ConfigError
from medsafe.redact import redact_url
from medsafe.schema import Item

__all__ = [
    "PHI_CHECKS",
    "EgressDecision",
    "EgressRefused",
    "PhiCheck",
    "check_egress",
    "is_loopback",
]

PhiCheck = Literal["off", "warn", "block"]
PHI_CHECKS: tuple[PhiCheck, ...] = ("off", "warn", "block")
EXAMPLES = 5


class EgressRefused(ConfigError):
    """Items with identifiers would be sent to a remote endpoint (exit 2)."""


def is_loopback(url: str) -> bool:
    """Whether ``url``'s host is literally ``localhost``, in 127.0.0.0/8, or ``::1``."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return False
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class EgressDecision:
    """What the check found and decided (``record()`` is what the run's provenance keeps)."""

    mode: PhiCheck
    remote: tuple[str, ...]
    """The remote endpoints (credentials masked)."""
    items: int
    by_type: dict[str, int] = field(default_factory=dict)
    blocking_items: tuple[str, ...] = ()
    """Ids of items with a finding of a blocking type."""
    warning_items: tuple[str, ...] = ()
    allow_phi: bool = False

    @property
    def allowed(self) -> bool:
        """False when the run must be refused."""
        return not (self.mode == "block" and self.blocking_items and not self.allow_phi)

    def record(self) -> dict[str, Any]:
        """The provenance entry: policy, endpoints, counts, and whether PHI was allowed."""
        return {
            "phi_check": self.mode,
            "remote_endpoints": list(self.remote),
            "items_scanned": self.items,
            "findings_by_type": dict(sorted(self.by_type.items())),
            "items_with_identifiers": len(self.blocking_items),
            "items_with_names": len(self.warning_items),
            "allow_phi": self.allow_phi,
        }

    def summary(self) -> str:
        """One line: counts per type and a few item ids."""
        counts = ", ".join(f"{kind} {n}" for kind, n in sorted(self.by_type.items()))
        ids = self.blocking_items or self.warning_items
        shown = ", ".join(ids[:EXAMPLES]) + (", ..." if len(ids) > EXAMPLES else "")
        return f"{counts}; items: {shown}"

    def refusal(self) -> str:
        """The error message of a refused run."""
        where = ", ".join(self.remote)
        return (
            f"{len(self.blocking_items)} of {self.items} items contain personal identifiers "
            f"({self.summary()}) and would be sent to the non-loopback endpoint {where}; "
            "nothing was sent. Redact them (medsafe check-data SUITE --redact -o OUT), use a "
            "loopback endpoint, or pass --allow-phi (recorded in the run's provenance and "
            "audit trail)"
        )

    def warnings(self) -> list[str]:
        """Notices to print when the run goes on."""
        notes: list[str] = []
        if self.mode == "off" or not self.remote:
            return notes
        if self.blocking_items and (self.allow_phi or self.mode == "warn"):
            why = "--allow-phi" if self.allow_phi else "--phi-check warn"
            notes.append(
                f"{len(self.blocking_items)} items with personal identifiers are sent to "
                f"{', '.join(self.remote)} ({why}): {self.summary()}"
            )
        elif self.warning_items:
            notes.append(
                f"{len(self.warning_items)} items mention what look like person names and are "
                f"sent to {', '.join(self.remote)}: {self.summary()}"
            )
        return notes


def check_egress(
    items: Iterable[Item],
    endpoints: Sequence[str],
    mode: PhiCheck | None = None,
    *,
    allow_phi: bool = False,
    config: ScanConfig | None = None,
) -> EgressDecision:
    """Scan ``items`` if any endpoint is remote and decide (``mode`` None: ``block`` when an
    endpoint is remote, else ``off``). Never raises; see :meth:`EgressDecision.allowed`."""
    if mode is not None and mode not in PHI_CHECKS:
        raise ConfigError(f"--phi-check must be off, warn or block, not {mode!r}")
    remote = tuple(dict.fromkeys(redact_url(u) for u in endpoints if u and not is_loopback(u)))
    chosen: PhiCheck = mode or ("block" if remote else "off")
    if chosen == "off" or not remote:
        return EgressDecision(chosen, remote, 0, allow_phi=allow_phi)
    count = 0
    by_type: Counter[str] = Counter()
    blocking: dict[str, None] = {}
    warning: dict[str, None] = {}

    def counted(source: Iterable[Item]) -> Iterable[Item]:
        nonlocal count
        for item in source:
            count += 1
            yield item

    findings: Iterable[Finding] = scan_items(counted(items), config)
    for finding in findings:
        if finding.type == "date":
            continue
        by_type[finding.type] += 1
        if finding.type in BLOCKING:
            blocking[finding.item_id or ""] = None
        elif finding.type in WARNING:
            warning[finding.item_id or ""] = None
    return EgressDecision(
        chosen,
        remote,
        count,
        dict(by_type),
        tuple(blocking),
        tuple(i for i in warning if i not in blocking),
        allow_phi,
    )
