"""``python -m medsafe.cli``: the ``medsafe`` command."""

from medsafe.cli import main

main()
