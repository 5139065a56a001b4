"""Each API's wire models and the mapping from core outcomes to its contract.

Importing this package registers every dialect's event renderer with the runtime.
"""

from turnstop.dialects.llm import renderer as _llm_renderer  # noqa: F401
from turnstop.dialects.omni import renderer as _omni_renderer  # noqa: F401
from turnstop.dialects.sessions import renderer as _sessions_renderer  # noqa: F401
