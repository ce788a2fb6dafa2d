"""`python -m trailhound`: the same as the `trailhound` command."""

from trailhound.cli.main import run

run()
