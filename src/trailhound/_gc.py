"""Pausing Python's cyclic garbage collector around allocation-heavy work.

Loading events, evaluating rules and building alerts create millions of small, acyclic
objects (parsed documents, alert dicts, distinct-value lists). Each young-generation pass
then rescans every survivor, and the full passes that follow grow with the heap: on 1M events
with 25k alerts the collector alone cost about 3 s. Reference counting still frees all of
it; only cycles wait until the block ends.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def no_gc():
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
