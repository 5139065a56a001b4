"""Signed webhook deliveries, by job: the signature (``signing``) and the SSRF-guarded POST
with a deadline (``delivery``)."""

from turnstop.webhooks.delivery import (
    MAX_URL_CHARS,
    Delivery,
    Resolve,
    Target,
    UnsafeUrl,
    check_url,
    post,
    system_resolve,
)
from turnstop.webhooks.signing import SIGNATURE_TOLERANCE_S, sign, verify

__all__ = [
    "MAX_URL_CHARS",
    "SIGNATURE_TOLERANCE_S",
    "Delivery",
    "Resolve",
    "Target",
    "UnsafeUrl",
    "check_url",
    "post",
    "sign",
    "system_resolve",
    "verify",
]
