"""Rules out of Trailhound: one generator per target language.

* `eql`: IR → EQL text (the printer our parser reads back to the same IR).
* `sigma`: EQL / KQL / detection-rules TOML → Sigma rules and correlations, with the logsource and
  field names of the Sigma taxonomy read backwards from lang/sigma/linux.yml.
* `toml`: a rule as detection-rules TOML.
* `siem`: Splunk SPL, Kusto (Sentinel ASIM via `asim`; Defender XDR as kusto-xdr), Lucene and ES|QL through pySigma's backends, from
  the Sigma export.
* `package`: a rule's detection package (every language, and a Markdown page).

What a target cannot express is refused for that rule with `ConversionRefused` naming the construct;
never a silently weaker rule. What converts with a caveat carries a warning.
"""

from __future__ import annotations

from ..rules.errors import UnsupportedError


class ConversionRefused(UnsupportedError):
    """The rule (or query) has no faithful form in the target; `reason` says which construct."""


TARGETS = ("sigma", "eql", "toml", "splunk", "kusto", "esql", "lucene", "kusto-xdr")
