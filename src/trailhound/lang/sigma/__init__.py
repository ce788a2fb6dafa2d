"""Sigma rules → the IR (pySigma parses; we translate its rule objects), with the logsource and field
mapping kept as data (linux.yml). Imported only by the commands that load Sigma rules: pySigma is heavy."""
