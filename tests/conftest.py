import sys
from pathlib import Path

# the conformance harness is a plain module beside its tests
sys.path.insert(0, str(Path(__file__).parent / "conformance"))

# tests exercise the parsers, not the rule cache (its own test turns it on in a temporary folder)
import os  # noqa: E402

os.environ["TRAILHOUND_CACHE_DIR"] = "off"
# the rule cache's key lives in the user's state directory: the tests use their own
import tempfile  # noqa: E402

os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="trailhound-test-state-")
