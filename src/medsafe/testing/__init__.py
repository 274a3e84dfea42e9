"""Test helpers that ship with medsafe (a loopback mock OpenAI-compatible server)."""
