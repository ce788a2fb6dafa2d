"""The Spark session's memory defaults and the out-of-memory message (no Spark needed)."""

from __future__ import annotations

from trailhound.spark.driver import local_memory, out_of_memory


def test_local_master_gets_half_the_memory(monkeypatch, tmp_path):
    for name in ("SPARK_DRIVER_MEMORY", "PYSPARK_SUBMIT_ARGS", "SPARK_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    conf = local_memory("local[2]")
    assert conf == local_memory(None)
    gb = int(conf["spark.driver.memory"].rstrip("g"))
    assert 1 <= gb <= 32 and conf["spark.driver.maxResultSize"] == conf["spark.driver.memory"]


def test_what_the_user_set_wins(monkeypatch, tmp_path):
    monkeypatch.delenv("PYSPARK_SUBMIT_ARGS", raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    assert local_memory("spark://head:7077") == {} and local_memory("sc://head:15002") == {}
    monkeypatch.setenv("SPARK_DRIVER_MEMORY", "3g")
    assert local_memory("local[1]") == {}
    monkeypatch.delenv("SPARK_DRIVER_MEMORY")
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", "--driver-memory 2g pyspark-shell")
    assert local_memory("local[1]") == {}
    monkeypatch.delenv("PYSPARK_SUBMIT_ARGS")
    (tmp_path / "spark-defaults.conf").write_text("spark.driver.memory   6g\n")
    assert local_memory("local[1]") == {}


def test_out_of_memory_is_said_in_one_line():
    assert out_of_memory(RuntimeError("Job 1 cancelled because SparkContext was shut down")) is not None
    why = out_of_memory(RuntimeError("java.lang.OutOfMemoryError: Java heap space"))
    assert why is not None and "\n" not in why and "SPARK_DRIVER_MEMORY" in why
    assert out_of_memory(RuntimeError("no such file")) is None
