"""The replay report: what the robot saw and remembered, as one self-contained HTML file."""
from .data import ReportData, load_report_data
from .render import render_html, write_report

__all__ = ["ReportData", "load_report_data", "render_html", "write_report"]
