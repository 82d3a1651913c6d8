"""Stand-in for vLLM's CLI package (test double only)."""
