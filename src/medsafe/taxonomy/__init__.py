"""Taxonomy registry: the frameworks items are labelled with, and their categories.

Bundled frameworks (sources and provenance in docs/taxonomy.md):

- ``ama`` -- the 9 AMA Principles of Medical Ethics (MedSafetyBench categories 1-9).
- ``medes`` -- the 14 MedES scenes of Chinese medical ethics.
- ``cn-ethics`` / ``cn-safety`` -- an 11-ethics x 9-safety grid for Chinese medical LLMs.
"""

from medsafe.taxonomy.model import Category, Framework, Provenance
from medsafe.taxonomy.registry import (
    ama_principle,
    category,
    find_category,
    framework_of,
    frameworks,
    get_framework,
)

__all__ = [
    "Category",
    "Framework",
    "Provenance",
    "ama_principle",
    "category",
    "find_category",
    "framework_of",
    "frameworks",
    "get_framework",
]
