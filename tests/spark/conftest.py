"""One local Spark session for the whole test session (small: local[2], one shuffle partition per
rule group up to 4, no UI); the Spark tests skip with the reason where pyspark or Java is missing."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install 'trailhound[spark]')")
    if shutil.which("java") is None:
        pytest.skip("no Java on PATH: Spark needs Java 17 or later")
    from trailhound.spark.driver import SparkUnavailable, session

    try:
        s = session("local[2]")
    except SparkUnavailable as e:
        pytest.skip(str(e))
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()
