"""HTML reports (one per participant at the output root, ``group.html``) and the methods boilerplate."""

from bids_encoding.reports.boilerplate import write_boilerplate
from bids_encoding.reports.run import write_reports

__all__ = ["write_boilerplate", "write_reports"]
