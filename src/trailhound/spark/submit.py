"""What `spark-submit` runs: `trailhound hunt --engine spark` in the application's own Spark session.

    spark-submit --master spark://head:7077 "$(python -m trailhound.spark.submit --path)" \\
        --rules rules/ s3a://logs/2026/12/ --out alerts.ndjson

spark-submit starts the driver with its master, deploy mode and configuration; this file takes that
session (`SparkSession.builder.getOrCreate()`) and runs the `hunt` command with it. Its arguments are
`trailhound hunt`'s, without --engine and --master (spark-submit decides where it runs); its exit code is
hunt's (0 no alerts, 1 alerts, 2 the run cannot be trusted), which spark-submit passes on. Run as a file,
so absolute imports only.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--path"]:  # for spark-submit's command line: this file, wherever the package is installed
        print(__file__)
        return 0
    taken = [a for a in args if a.split("=", 1)[0] in ("--engine", "--master")]
    if taken:
        print(f"error: {taken[0].split('=', 1)[0]} is decided by spark-submit (its --master); give hunt's other "
              "arguments", file=sys.stderr)
        return 2
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        print("error: this runs under spark-submit, with pyspark installed (pip install 'trailhound[spark]')",
              file=sys.stderr)
        return 2
    spark = SparkSession.builder.appName("trailhound").getOrCreate()  # spark-submit's master and --conf
    try:
        from trailhound.cli.main import app

        try:
            app(args=["hunt", "--engine", "spark", *args], prog_name="trailhound")
            return 0
        except SystemExit as e:
            return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
        except Exception as e:  # noqa: BLE001 - a bug, not the user's input: one line, as the CLI says it
            print(f"internal error: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
