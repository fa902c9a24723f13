"""``python -m harness`` runs the command line, as the ``harness`` script does."""

from harness.cli import app

app(prog_name="harness")
