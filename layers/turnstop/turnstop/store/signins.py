"""Browser sign-in: server-side sessions (``COOKIE#<sha256>`` / ``CRED``, the cookie's value
stored hashed) and sign-ins in progress (``LOGIN#<sha256>`` / ``LOGIN``, consumed once)."""

from __future__ import annotations

from typing import Any

from turnstop.core.signin import LoginState, WebSession, secret_hash
from turnstop.store import codec
from turnstop.store.db import Dynamo

SESSION_SK = "CRED"
LOGIN_SK = "LOGIN"
SESSION_KIND = "web_session"


def session_pk(digest: str) -> str:
    return f"COOKIE#{digest}"


def login_pk(secret: str) -> str:
    return f"LOGIN#{secret_hash(secret)}"


def _session_from(raw: dict[str, Any] | None) -> WebSession | None:
    if not raw or raw.get("kind") != SESSION_KIND:
        return None
    return WebSession(
        digest=str(raw["pk"]).removeprefix("COOKIE#"),
        tenant=raw["tenant"],
        user=raw["end_user"],
        name=raw.get("name", ""),
        created_at=int(raw["created_at"]),
        expires_at=int(raw["expires_at"]),
        idle_expires_at=int(raw["idle_expires_at"]),
        last_seen=int(raw["last_seen"]),
    )


class Signins:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    # ------------------------------------------------------------------ sessions

    def create_session(self, session: WebSession) -> None:
        item = {
            "pk": session_pk(session.digest),
            "sk": SESSION_SK,
            "kind": SESSION_KIND,
            "tenant": session.tenant,
            "end_user": session.user,
            "name": session.name,
            "created_at": session.created_at,
            "expires_at": session.expires_at,
            "idle_expires_at": session.idle_expires_at,
            "last_seen": session.last_seen,
            "ttl": self.db.ttl(session.expires_at),
        }
        self.db.call(
            "put_item", TableName=self.db.table, Item=codec.dump(item), ConditionExpression="attribute_not_exists(pk)"
        )

    def session(self, secret: str) -> WebSession | None:
        """The session a cookie's value names, as stored (the caller asks ``active``)."""
        return _session_from(self.db.get(session_pk(secret_hash(secret)), SESSION_SK))

    def touch(self, session: WebSession, idle_ms: int) -> bool:
        """Push the idle expiry forward, if the session is still active; False if it is not."""
        now = self.db.now()
        new, _ = self.db.conditional(
            "update_item",
            Key=codec.key(session_pk(session.digest), SESSION_SK),
            UpdateExpression="SET last_seen = :now, idle_expires_at = :idle",
            ConditionExpression="attribute_exists(pk) AND expires_at > :now AND idle_expires_at > :now",
            ExpressionAttributeValues=codec.values(now=now, idle=min(now + idle_ms, session.expires_at)),
        )
        return new is not None

    def end_session(self, digest: str) -> None:
        """Sign out: the session is gone, so its cookie is unknown from now on."""
        self.db.call("delete_item", TableName=self.db.table, Key=codec.key(session_pk(digest), SESSION_SK))

    # ------------------------------------------------------------------ sign-ins in progress

    def begin_login(self, secret: str, login: LoginState) -> None:
        item = {
            "pk": login_pk(secret),
            "sk": LOGIN_SK,
            "state": login.state,
            "nonce": login.nonce,
            "verifier": login.verifier,
            "redirect_uri": login.redirect_uri,
            "return_to": login.return_to,
            "expires_at": login.expires_at,
            "ttl": self.db.ttl(login.expires_at),
        }
        self.db.call(
            "put_item", TableName=self.db.table, Item=codec.dump(item), ConditionExpression="attribute_not_exists(pk)"
        )

    def consume_login(self, secret: str, state: str) -> LoginState | None:
        """The sign-in this cookie started, if the callback's ``state`` is its own and it has
        not expired, deleted in the same write: a replayed callback finds nothing (None)."""
        now = self.db.now()
        old, _ = self.db.conditional(
            "delete_item",
            Key=codec.key(login_pk(secret), LOGIN_SK),
            ConditionExpression="attribute_exists(pk) AND state = :state AND expires_at > :now",
            ExpressionAttributeValues=codec.values(state=state, now=now),
            ReturnValues="ALL_OLD",
        )
        raw = codec.load(old) if old else None
        if not raw:
            return None
        return LoginState(
            raw["state"], raw["nonce"], raw["verifier"], raw["redirect_uri"], raw["return_to"], int(raw["expires_at"])
        )
