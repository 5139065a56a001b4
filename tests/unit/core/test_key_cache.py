"""The per-container API key cache: bounded, time-limited, keyed by the key's hash."""

from __future__ import annotations

from turnstop.auth import KeyCache
from turnstop.core.records import Credential

CRED = Credential("t1", (1,), "key_1")


def test_entries_expire_after_their_ttl() -> None:
    cache = KeyCache(ttl_s=30, size=10)
    cache.put("h1", CRED, now=100.0)
    assert cache.get("h1", now=129.9) == (True, CRED)
    assert cache.get("h1", now=130.0) == (False, None)
    assert len(cache) == 0


def test_a_flood_of_wrong_keys_cannot_grow_it_past_its_size() -> None:
    cache = KeyCache(ttl_s=30, size=100)
    for i in range(10_000):
        cache.put(f"h{i}", None, now=1.0)
    assert len(cache) == 100
    assert cache.get("h9999", now=2.0) == (True, None)  # the newest stay
    assert cache.get("h0", now=2.0) == (False, None)  # the oldest went first


def test_it_is_keyed_by_hash_never_by_the_key_itself(monkeypatch: object) -> None:
    from turnstop import auth

    seen: list[str] = []

    class Store:
        class credentials:  # noqa: N801 - stands in for the store's attribute
            @staticmethod
            def get(secret: str) -> Credential:
                return CRED

    cache = KeyCache()
    original = cache.put

    def spy(digest: str, cred: Credential | None, now: float) -> None:
        seen.append(digest)
        original(digest, cred, now)

    cache.put = spy  # type: ignore[method-assign]
    assert auth.resolve_key(Store(), "ts_secret_value", cache) == CRED  # type: ignore[arg-type]
    assert seen and "ts_secret_value" not in seen[0] and len(seen[0]) == 64
