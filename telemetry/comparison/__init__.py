"""Comparisons: two variants (a model, optionally a system prompt) replayed on recorded
requests and judged."""
