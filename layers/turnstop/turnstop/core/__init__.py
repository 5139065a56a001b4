"""Pure domain: the turn state machine, cancel outcomes, errors, clocks and ids. No boto3 here."""
