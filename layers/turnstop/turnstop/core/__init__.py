"""Pure domain: the turn state machine, cancel outcomes, errors, clocks and ids. No boto3 here."""

__all__ = ["billing", "bulk", "clock", "errors", "events", "ids", "records", "scopes", "signin", "tokens", "turn"]
