"""Remote workers' offers, three items per offered turn:

- the offer, ``WO#<offer id>`` / ``OFFER``: the whole hand-off between the runner (which keeps
  the turn) and a remote worker (which produces its output through the worker API,
  docs/agents.md), small, so the runner's frequent reads of it cost one read unit each;
- its request, ``WO#<offer id>`` / ``REQUEST``: read once, by the claim that wins it;
- its marker, ``WQ#<queue>`` / ``<created ms>#<offer id>``: what a claim finds, oldest first.

The runner puts both, the offer ``open`` with the request. A claim reads the queue's markers
and flips an offer to ``claimed`` with the hash of a fresh attempt token (one conditional write:
two workers never get one offer), then deletes the marker (a marker whose offer is no longer
open is deleted by the claim that finds it, so the query reads only live offers). A worker
acknowledges its claim with a first (empty) emit; a claim not acknowledged within the runner's
``ACK_S`` (its answer was lost: the claimer went away mid long-poll) is re-opened and its
marker put again. Each batch of emits is one conditional ``list_append`` onto ``events``
(refused once ``cancelled`` is set, the token differs, or the runner has not been ``seen`` for
``RUNNER_STALE_MS``: the function running the turn died, the lost-worker rules settle it); ``n`` counts the worker's calls (a
heartbeat too). The runner reads the offer, yields the events and removes what it read (only
it removes, so removing the first ``k`` removes exactly what it saw); ``abort`` sets
``cancelled``; the end of the call sets ``state = done``, and TTL removes the item.
"""

from __future__ import annotations

import json
from typing import Any

from turnstop.store import codec
from turnstop.store.db import Dynamo

OPEN, CLAIMED, DONE = "open", "claimed", "done"
CLAIM_PAGE = 25
# The runner says it is alive (``seen``) at least every few seconds while it reads the offer; an
# offer not seen this long (the function running the turn died) refuses the worker's emits.
RUNNER_STALE_MS = 15_000
# An offer's item outlives the turn by this long at most (the runner marks it done at the end).
OFFER_LIFE_MS = 2 * 3_600_000


def _key(queue: str, turn_id: str) -> dict[str, Any]:
    return codec.key(f"WO#{turn_id}", "OFFER")


class Offers:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    # -- the runner's side

    def put(self, queue: str, turn_id: str, request: dict[str, Any]) -> None:
        now = self.db.now()
        item = {
            "pk": f"WO#{turn_id}",
            "sk": "OFFER",
            "state": OPEN,
            "queue": queue,
            "turn_id": turn_id,
            "events": [],
            "n": 0,
            "cancelled": False,
            "created_at": now,
            "seen": now,
            "ttl": self.db.ttl(now + OFFER_LIFE_MS, 0),
        }
        held = {"pk": f"WO#{turn_id}", "sk": "REQUEST", "request": codec.compact_json(request), "ttl": item["ttl"]}
        self.db.call("put_item", TableName=self.db.table, Item=codec.dump(held))
        self.db.call("put_item", TableName=self.db.table, Item=codec.dump(item))
        self._mark(queue, turn_id, now)

    def _mark(self, queue: str, turn_id: str, now: int) -> None:
        marker = {
            "pk": f"WQ#{queue}",
            "sk": f"{now:013d}#{turn_id}",
            "turn_id": turn_id,
            "ttl": self.db.ttl(now + OFFER_LIFE_MS, 0),
        }
        self.db.call("put_item", TableName=self.db.table, Item=codec.dump(marker))

    def read(self, queue: str, turn_id: str) -> dict[str, Any] | None:
        item = self.db.get(f"WO#{turn_id}", "OFFER")
        if item is not None and isinstance(item.get("finished"), str):
            item["finished"] = json.loads(item["finished"])
        return item

    def consumed(self, queue: str, turn_id: str, count: int) -> None:
        """Remove the first ``count`` events (the runner has yielded them), and say the runner is
        alive (``seen``): an offer whose runner is gone refuses the worker's emits."""
        removed = (" REMOVE " + ", ".join(f"events[{i}]" for i in range(count))) if count else ""
        self.db.call(
            "update_item",
            TableName=self.db.table,
            Key=_key(queue, turn_id),
            UpdateExpression=f"SET seen = :now{removed}",
            ExpressionAttributeValues=codec.values(now=self.db.now()),
        )

    def cancel(self, queue: str, turn_id: str, *, done: bool = False) -> None:
        """Refuse every further emit (``abort``); ``done``: the turn has ended, no claim sees it."""
        state = ", state = :done" if done else ""
        extra = {"done": DONE} if done else {}
        self.db.conditional(
            "update_item",
            Key=_key(queue, turn_id),
            UpdateExpression=f"SET cancelled = :t{state}",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=codec.values(t=True, **extra),
        )

    def reopen(self, queue: str, turn_id: str, token_hash: str) -> bool:
        """Offer it again: its claim was never acknowledged (the claimer's answer was lost, or
        it died at once). Its token is revoked, so that claimer is told ``cancelled``."""
        new, _ = self.db.conditional(
            "update_item",
            Key=_key(queue, turn_id),
            UpdateExpression="SET state = :open REMOVE token",
            ConditionExpression="state = :claimed AND token = :token AND n = :zero AND cancelled = :f",
            ExpressionAttributeValues=codec.values(open=OPEN, claimed=CLAIMED, token=token_hash, zero=0, f=False),
        )
        if new is None:
            return False
        self._mark(queue, turn_id, self.db.now())
        return True

    # -- the worker API's side

    def claim(self, queue: str, token_hash: str) -> dict[str, Any] | None:
        """The oldest open offer of ``queue``, now claimed with ``token_hash``; None if none is open."""
        page = self.db.call(
            "query",
            TableName=self.db.table,
            KeyConditionExpression="pk = :pk",
            ConsistentRead=True,
            Limit=CLAIM_PAGE,
            ExpressionAttributeValues=codec.values(pk=f"WQ#{queue}"),
        )
        for marker in (codec.load(i) or {} for i in page.get("Items", [])):
            new, _ = self.db.conditional(
                "update_item",
                Key=_key(queue, str(marker["turn_id"])),
                UpdateExpression="SET state = :claimed, token = :token, beat = :now",
                ConditionExpression="state = :open AND cancelled = :f",
                ExpressionAttributeValues=codec.values(
                    claimed=CLAIMED, token=token_hash, now=self.db.now(), open=OPEN, f=False
                ),
                ReturnValues="ALL_NEW",
            )
            self.db.call("delete_item", TableName=self.db.table, Key=codec.key(f"WQ#{queue}", str(marker["sk"])))
            if new is not None:
                won = str((codec.load(new) or {})["turn_id"])
                held = self.db.get(f"WO#{won}", "REQUEST") or {}
                return {"turn_id": won, "request": json.loads(held.get("request") or "{}")}
        return None

    def emit(
        self, queue: str, turn_id: str, token_hash: str, events: list[list[str]], finish: dict[str, Any] | None = None
    ) -> bool | None:
        """Append a batch (and, with ``finish``, the worker's end). False: refused, the turn is
        cancelled or over (or the token is not this attempt's): the worker must stop. None: no
        such offer on this queue."""
        update = "SET events = list_append(events, :batch), beat = :now ADD n :one"
        extra: dict[str, Any] = {}
        if finish is not None:
            update = "SET events = list_append(events, :batch), beat = :now, finished = :fin ADD n :one"
            # as JSON text: an agent's approval params may hold floats, big or deep values no
            # DynamoDB attribute can
            extra["fin"] = codec.compact_json(finish)
        new, old = self.db.conditional(
            "update_item",
            Key=_key(queue, turn_id),
            UpdateExpression=update,
            ConditionExpression="state = :claimed AND token = :token AND cancelled = :f AND queue = :queue "
            "AND attribute_not_exists(finished) AND seen > :stale",
            ExpressionAttributeValues=codec.values(
                batch=events,
                now=self.db.now(),
                one=1,
                claimed=CLAIMED,
                token=token_hash,
                f=False,
                queue=queue,
                stale=self.db.now() - RUNNER_STALE_MS,
                **extra,
            ),
        )
        if new is not None:
            return True
        item = codec.load(old) if old else None
        return False if item and item.get("queue") == queue else None

    def still_yours(self, queue: str, turn_id: str, token_hash: str) -> bool | None:
        """A worker's question while its handler is silent: may it go on? (one consistent read,
        no write: it does not count as the handler being alive). None: no such offer here."""
        item = self.db.get(f"WO#{turn_id}", "OFFER", consistent=True)
        if not item or item.get("queue") != queue:
            return None
        return (
            item.get("state") == CLAIMED
            and item.get("token") == token_hash
            and not item.get("cancelled")
            and "finished" not in item
            and int(item.get("seen", 0)) > self.db.now() - RUNNER_STALE_MS
        )
