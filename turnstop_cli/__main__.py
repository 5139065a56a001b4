"""``python -m turnstop_cli``: the same as the ``turnstop`` console script."""

from turnstop_cli.app import main

main()
