"""Fuzzing tests: hostile queries, rules and log lines must end in a clean error or a result,
never a traceback, never over a time or memory budget.

Profiles (select with `HYPOTHESIS_PROFILE`): `ci` (the default, a small example count so the
suite stays fast) and `bench` (many examples, for `bench/fuzz.py` and long local runs).
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "bench", max_examples=int(os.environ.get("TRAILHOUND_FUZZ_EXAMPLES", "5000")), deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
