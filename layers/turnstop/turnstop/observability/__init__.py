"""Following one request: the keys every log line of a request carries (``logkeys``), and
X-Ray tracing that loads only when asked for (``tracing``). Nothing is imported here: a
function takes the module it uses."""

__all__ = ["logkeys", "tracing"]
