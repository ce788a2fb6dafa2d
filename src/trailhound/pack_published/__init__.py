"""The published (seed) logic of the two SSH pack rules that Trailhound tuned for precision, kept
as written for users who want that behaviour: `trailhound hunt --rules <this folder>` (beside or
instead of the pack). Not part of the default pack, which holds the tuned versions."""

from pathlib import Path

DIR = Path(__file__).parent
