"""The results store (SQLite, WAL, one writer thread) and its exports."""

from medsafe.store.sqlite import CachedAnswer, RunRecord, Store, connect
from medsafe.store.writer import StoreWriter

__all__ = ["CachedAnswer", "RunRecord", "Store", "StoreWriter", "connect"]
