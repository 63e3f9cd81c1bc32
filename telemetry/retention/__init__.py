"""Retention: records removed once older than the days the config keeps them for (dropping
whole day partitions on Postgres, deleting in small batches elsewhere)."""
