"""The cancel's one conditional write of a turn head, built once: ``Turns.request_cancel`` sends
it as an UpdateItem, a dialect that flags several turns together (the chat cancel: an action
and a streaming reply) as items of one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from turnstop.core.scopes import Scope
from turnstop.core.turn import CancelRequest, Status


@dataclass(frozen=True)
class CancelWrite:
    """The cancel's one conditional update of a head, as an UpdateItem or a transaction item."""

    update: str
    condition: str
    values: dict[str, Any]


def cancel_write(
    turn_id: str,
    *,
    tenant: str,
    req: CancelRequest,
    scope: Scope | None,
    end_user: str | None,
    only_queued: bool,
    now: int,
) -> CancelWrite:
    """Set the cancel flag if the turn is the caller's (tenant, scope, end user), in flight
    (or, ``only_queued``, not started yet) and not flagged already."""
    in_flight = "status = :queued" if only_queued else "status IN (:queued, :running)"
    cond = ["tenant = :tenant", in_flight, "attribute_not_exists(cancel_requested_at)"]
    vals: dict[str, Any] = {"tenant": tenant, "queued": Status.QUEUED.value}
    if not only_queued:
        vals["running"] = Status.RUNNING.value
    if scope is not None:
        cond.append("scope = :scope")
        vals["scope"] = str(scope)
    if end_user is not None:
        cond.append("end_user = :end_user")
        vals["end_user"] = end_user
    sets = {
        "cancel_requested_at": now,
        "cancel_source": req.source,
        "cancel_reason": req.reason,
        "cancel_actor": req.actor,
        "cancel_batch": req.batch,
    }
    present = {k: v for k, v in sets.items() if v is not None}
    # cancel_seq: what was committed when the cancel was accepted (a dialect whose cancel
    # answer shows the output ends the turn with exactly that output). A flagged turn is no
    # longer a bulk cancel's to stop: out of the live index (store/live.py) with the flag.
    update = "SET cancel_seq = seq, " + ", ".join(f"{k} = :{k}" for k in present) + " REMOVE gsi4pk, gsi4sk"
    return CancelWrite(update, " AND ".join(cond), {**vals, **present})
