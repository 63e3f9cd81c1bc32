"""Insights: where cost can fall or reliability rise, read from what the gateway recorded.

Four readers, each over one workspace (or every workspace, for an operator) and a time range,
each bounded by that range and a row limit so a large history stays fast:

- `cheaper_models`: a cheaper served model whose judged scores are not worse beyond a margin;
- `repeats`: identical requests that were paid for more than once (the cache missed them);
- `max_tokens`: `max_tokens` set far above what the answers use;
- `errors`: provider errors grouped by provider, type and a fingerprint of the message.

`findings.read_insights` runs all four; the console page, the admin API and the report section
read through it, so the three never disagree.
"""
