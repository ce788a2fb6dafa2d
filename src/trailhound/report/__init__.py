"""The alerts of a hunt for a person to read: a self-contained HTML report (`html.py`, with its
own script and styles in `assets/`), an ATT&CK Navigator layer (`navigator.py`), a Markdown
summary for tickets (`markdown.py`) and exception entries for tuning (`tuning.py`).

Everything here is built from data: the alert documents (Kibana's schema, as `hunt` writes
them), the hunt's summary (`HuntReport.to_dict()`), the rules when known, and the process
starts of the event files. Every string of it may come from a log an attacker wrote.
"""

from .model import ReportData, build_report

__all__ = ["ReportData", "build_report"]
