"""``python -m broadcast_cli``: the ``broadcast`` command."""

from .cli.app import main

main()
