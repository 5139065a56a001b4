"""Each API's wire models and the mapping from core outcomes to its contract.

Importing this package registers every dialect's event renderer with the runtime.
"""

from turnstop.dialects.sessions import renderer as _sessions_renderer  # noqa: F401
