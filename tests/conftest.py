import sys
from pathlib import Path

# the conformance harness is a plain module beside its tests
sys.path.insert(0, str(Path(__file__).parent / "conformance"))

# tests exercise the parsers, not the rule cache (its own test turns it on in a temporary folder)
import os  # noqa: E402

os.environ["TRAILHOUND_CACHE_DIR"] = "off"
