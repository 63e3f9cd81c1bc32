"""Upstream calls: routing to a deployment, retries and fallbacks, deployment health, and calls to
the gateway's public models from background jobs."""
