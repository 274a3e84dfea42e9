"""Authoring: normative corpora, generated rules and items, deduplication, CoT curation."""
