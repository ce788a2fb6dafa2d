"""The filter step: which rows of an event frame each rule's filters select (its candidates), vectorized.

* frame.py: the frame as the filters read it (aliases, dates as epoch ns, the event order) and the
  options that decide it (`FrameOptions`);
* shared.py: `SharedFilters`, the per-frame work many rules share (dictionary-encoded fields in
  encoding.py, single-field atoms evaluated once per distinct value, filters planned in plan.py),
  made by the caller for one frame and one set of frame options and passed to the searches;
* candidates.py: the candidate rows of one query (Polars over the prepared frame) or of many (over a
  SharedFilters), in event order: what the correlators (engine/correlate.py) take.
"""

from .candidates import candidates, needed_fields
from .frame import ORDER, FrameOptions, prepare
from .shared import CompiledAtoms, SharedFilters

__all__ = ["ORDER", "CompiledAtoms", "FrameOptions", "SharedFilters", "candidates", "needed_fields", "prepare"]
