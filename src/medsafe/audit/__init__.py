"""Hash-chained audit trail and run content hashes (RFC 8785)."""
