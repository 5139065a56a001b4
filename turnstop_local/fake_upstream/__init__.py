"""Protocol-exact fake model servers for the tests and the benchmark (docs/fake-upstream.md).

One loopback HTTP/1.1 server answers as an OpenAI-compatible Chat Completions server, as Amazon
Bedrock's ``ConverseStream`` (AWS event-stream frames) and as OpenAI's Responses API (background
mode, resume, retrieve, cancel), with a scripted ``Behaviour`` per model name, and records for
every request when the client went away.
"""

from turnstop_local.fake_upstream.behaviour import (
    Behaviour,
    Fail,
    Plan,
    expected_text,
    expected_thinking,
)
from turnstop_local.fake_upstream.records import Records, RequestRecord
from turnstop_local.fake_upstream.server import FakeUpstream

__all__ = [
    "Behaviour",
    "Fail",
    "FakeUpstream",
    "Plan",
    "Records",
    "RequestRecord",
    "expected_text",
    "expected_thinking",
]
