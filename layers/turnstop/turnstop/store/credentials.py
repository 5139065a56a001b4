"""API keys, stored hashed: ``KEY#<sha256>`` / ``CRED``."""

from __future__ import annotations

import hashlib

from turnstop.core.records import Credential
from turnstop.store import codec
from turnstop.store.db import Dynamo


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Credentials:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    def put(self, secret: str, cred: Credential) -> None:
        item = {
            "pk": f"KEY#{hash_secret(secret)}",
            "sk": "CRED",
            "tenant": cred.tenant,
            "account_ids": list(cred.account_ids),
            "key_id": cred.key_id,
            "name": cred.name,
            "admin": cred.admin or None,
            "created_at": self.db.now(),
        }
        self.db.call("put_item", TableName=self.db.table, Item=codec.dump(item))

    def get(self, secret: str) -> Credential | None:
        raw = self.db.get(f"KEY#{hash_secret(secret)}", "CRED", consistent=False)
        if not raw or raw.get("revoked_at"):
            return None
        return Credential(
            tenant=raw["tenant"],
            account_ids=tuple(int(a) for a in raw.get("account_ids", [])),
            key_id=raw["key_id"],
            name=raw.get("name", ""),
            admin=bool(raw.get("admin")),
        )
