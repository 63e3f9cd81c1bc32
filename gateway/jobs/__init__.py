"""The gateway's parts that background jobs (alerts, evaluations, comparisons) are built from."""
