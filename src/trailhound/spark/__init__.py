"""The Spark engine: `trailhound hunt --engine spark` (`driver.run_hunt_spark`), the local engine's own
code run in Spark tasks (`tasks`). pyspark is imported only when a session starts (the `spark` extra)."""
