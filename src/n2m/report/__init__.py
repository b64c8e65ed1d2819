"""`n2m report RUN_DIR`: what a run learned, in pictures (learning curves, and the test split's predictions as
each shape reads them), as one self-contained HTML file; `n2m fit` writes it after the test."""

from n2m.report.page import report_part, write_report

__all__ = ["report_part", "write_report"]
