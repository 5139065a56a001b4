"""The only code that talks to DynamoDB and SQS: one small facade over one module per aggregate.

Every state change is a single conditional write (UpdateItem, or one TransactWriteItems when
several items must land together, named so a failure is read by name). A failed condition
returns the old item (``ReturnValuesOnConditionCheckFailure=ALL_OLD``) instead of a read
before the write; ``ClientError`` codes become domain errors in ``store.db`` and nowhere else.

    store.turns        start, cancel, claim, commit, finish, read     (store/turns.py, turn_starts.py)
    store.queue        enqueue, requeue, undo a refused start         (store/queue.py)
    store.sweep        stalled in-flight turns                        (store/sweep.py)
    store.sessions     sessions and their one-turn slot               (store/sessions.py)
    store.omni_threads omni threads and their messages                (store/omni_threads.py)
    store.credentials  hashed API keys                                (store/credentials.py)
    store.ledger       usage, debit, charge and refund entries        (store/ledger.py)
    store.tasks        a task's charge at creation; the tasks list    (store/tasks.py)
    store.callbacks    task callbacks (outbox, attempts), secrets     (store/callbacks.py)
    store.answers      Idempotency-Keys whose answer is kept          (idempotency/answers.py)
    store.tombstones   cancels by Idempotency-Key, before the start   (idempotency/tombstones.py)
    store.live         a tenant's in-flight turns, for bulk cancels   (store/live.py)
    store.bulk         bulk cancels' reports and pages                (store/bulk.py)
    store.chat         chat threads, messages, actions; their cancels (store/chat.py, chat_cancels.py)
    store.signins      browser sessions and sign-ins in progress      (store/signins.py)
    store.rates        per-subject request counts per window          (store/rates.py)
    store.offers       remote workers' offers and their emits         (store/offers.py)
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from turnstop.core.clock import SYSTEM_CLOCK, Clock
from turnstop.store.db import Dynamo

if TYPE_CHECKING:
    from turnstop.idempotency.answers import Answers
    from turnstop.idempotency.tombstones import Tombstones
    from turnstop.store.bulk import BulkReports
    from turnstop.store.callbacks import Callbacks
    from turnstop.store.chat import Chat
    from turnstop.store.credentials import Credentials
    from turnstop.store.ledger import Ledger
    from turnstop.store.live import LiveIndex
    from turnstop.store.offers import Offers
    from turnstop.store.omni_threads import OmniThreads
    from turnstop.store.queue import TurnQueue
    from turnstop.store.rates import Rates
    from turnstop.store.sessions import Sessions
    from turnstop.store.signins import Signins
    from turnstop.store.sweep import Sweep
    from turnstop.store.tasks import Tasks
    from turnstop.store.turns import Turns


class Store:
    """The facade. Each aggregate is built (and its module imported) on first use, so a
    function loads only the store code it runs: a cancel loads ``turns``, not the rest."""

    def __init__(
        self,
        table: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        queue_url: str | None = None,
        dynamodb: Any = None,
        sqs: Any = None,
        callback_queue_url: str | None = None,
    ) -> None:
        self.db = Dynamo(table, clock, dynamodb)
        self._queue_url = queue_url
        self._callback_queue_url = callback_queue_url
        self._sqs = sqs

    @cached_property
    def offers(self) -> Offers:
        from turnstop.store.offers import Offers

        return Offers(self.db)

    @cached_property
    def turns(self) -> Turns:
        from turnstop.store.turns import Turns

        return Turns(self.db)

    @cached_property
    def queue(self) -> TurnQueue:
        from turnstop.store.queue import TurnQueue

        return TurnQueue(self.db, self._queue_url, self._sqs)

    @cached_property
    def sweep(self) -> Sweep:
        from turnstop.store.sweep import Sweep

        return Sweep(self.db, self.turns)

    @cached_property
    def sessions(self) -> Sessions:
        from turnstop.store.sessions import Sessions

        return Sessions(self.db)

    @cached_property
    def omni_threads(self) -> OmniThreads:
        from turnstop.store.omni_threads import OmniThreads

        return OmniThreads(self.db, self.turns)

    @cached_property
    def credentials(self) -> Credentials:
        from turnstop.store.credentials import Credentials

        return Credentials(self.db)

    @cached_property
    def ledger(self) -> Ledger:
        from turnstop.store.ledger import Ledger

        return Ledger(self.db)

    @cached_property
    def tasks(self) -> Tasks:
        from turnstop.store.tasks import Tasks

        return Tasks(self.db, self.turns)

    @cached_property
    def callbacks(self) -> Callbacks:
        from turnstop.store.callbacks import Callbacks

        return Callbacks(self.db, self._callback_queue_url, self._sqs)

    @cached_property
    def answers(self) -> Answers:
        from turnstop.idempotency.answers import Answers

        return Answers(self.db)

    @cached_property
    def tombstones(self) -> Tombstones:
        from turnstop.idempotency.tombstones import Tombstones

        return Tombstones(self.db, self.turns)

    @cached_property
    def live(self) -> LiveIndex:
        from turnstop.store.live import LiveIndex

        return LiveIndex(self.db)

    @cached_property
    def bulk(self) -> BulkReports:
        from turnstop.store.bulk import BulkReports

        return BulkReports(self.db)

    @cached_property
    def chat(self) -> Chat:
        from turnstop.store.chat import Chat

        return Chat(self.db, self.turns)

    @cached_property
    def signins(self) -> Signins:
        from turnstop.store.signins import Signins

        return Signins(self.db)

    @cached_property
    def rates(self) -> Rates:
        from turnstop.store.rates import Rates

        return Rates(self.db)

    @property
    def table(self) -> str:
        return self.db.table

    @property
    def clock(self) -> Clock:
        return self.db.clock

    def now(self) -> int:
        return self.db.now()


# The facade, and the modules other packages may import: the aggregates behind it whose types
# and helpers they need, the item codec, the DynamoDB adapter and transactions. The rest
# (cancels, ledger, offers, queue, rates, signins, sweep, turn_reads, turn_starts) is private to the store.
__all__ = [
    "Store",
    "bulk",
    "callbacks",
    "chat",
    "chat_cancels",
    "chunks",
    "codec",
    "credentials",
    "db",
    "finish",
    "heads",
    "live",
    "sessions",
    "tasks",
    "omni_threads",
    "transaction",
    "turns",
]
