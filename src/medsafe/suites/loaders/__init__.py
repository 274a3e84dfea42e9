"""Built-in suite loaders, one module per on-disk format; importing this package registers them
in :data:`medsafe.suites.base.loaders`."""

from medsafe.suites.loaders import (  # noqa: F401  (each module registers its loader)
    cmb,
    cmmlu,
    csvfile,
    healthbench,
    imaging,
    jsonl,
    medes,
    medsafetybench,
    parquetfile,
)

GENERIC = ("jsonl", "csv", "parquet")
"""Loaders that accept any file of their suffix; shape detection tries the others first."""
