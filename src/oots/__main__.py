"""``python -m oots`` is the ``oots`` command."""

from oots.cli import main

main()
