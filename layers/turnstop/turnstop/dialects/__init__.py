"""Each API's wire models and the mapping from core outcomes to its contract.

Per dialect: ``handlers`` (HTTP routes, one resolver per function), ``models`` (request
parsing), ``wire`` (error shape and answer bodies), ``renderer`` (event vocabulary) and
``service`` (the operations, a ``DialectService``). Importing this package imports no
dialect: a function loads only the dialect it serves (lean cold starts).
"""

__all__ = ["chat", "llm", "omni", "registry", "service", "sessions", "tasks"]
