"""``turnstop``: the operator's command line for a turnstop API, local or deployed.

Follow a turn's events with resume, cancel one turn or a whole scope, read a turn's status and
the ledger, and create keys — in any dialect (docs/cli.md).
"""

__version__ = "0.1.0"
