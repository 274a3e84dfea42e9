"""RFC 8785 (JSON Canonicalization Scheme) bytes and their SHA-256, the one encoding every
hash of :mod:`medsafe.audit` and :mod:`medsafe.manifest` is taken over."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

__all__ = ["canonical", "sha256_hex"]


def canonical(value: Any) -> bytes:
    """The RFC 8785 canonical JSON of ``value`` (UTF-8 bytes).

    Raises ``rfc8785.CanonicalizationError`` (a ``ValueError``) for what JSON cannot hold
    exactly: NaN, infinities, integers beyond ±2**53, non-string keys.
    """
    return rfc8785.dumps(value)


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
