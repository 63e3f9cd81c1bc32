"""Reports: the analytics of a period made into a document (`document.ReportDocument`), written
as CSV, JSON or PDF, run on a schedule or on demand and sent to recipients (docs/reports.md)."""
