"""Stand-in package mirroring the layout of the real vLLM package (test double only)."""
