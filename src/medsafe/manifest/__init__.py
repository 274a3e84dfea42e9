"""Signed in-toto run manifests and Ed25519 keys."""
