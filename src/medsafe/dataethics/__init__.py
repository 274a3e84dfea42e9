"""Data-ethics checks: PHI/PII detection, redaction, egress policy."""
