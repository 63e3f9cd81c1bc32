"""Workspaces and their virtual keys, and the limits a key or a workspace carries (budgets, rate
limits, allowed models, default guardrails): read by the entry, the limits and the console."""
