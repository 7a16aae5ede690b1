"""``python -m ltos_traffic.cli``: the ``ltos-traffic`` command."""

from ltos_traffic.cli import main

main()
