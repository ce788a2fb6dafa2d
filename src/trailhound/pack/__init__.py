"""Trailhound's own rule pack: SSH lateral movement and its neighbours, as detection-rules TOML,
each rule with its unit tests beside it (`<rule>.test.toml`). `trailhound hunt` runs it by default."""

from pathlib import Path

DIR = Path(__file__).parent
