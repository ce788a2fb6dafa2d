import sys
from pathlib import Path

# the conformance harness is a plain module beside its tests
sys.path.insert(0, str(Path(__file__).parent / "conformance"))
