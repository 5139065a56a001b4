"""The only code that talks to DynamoDB and SQS.

Every state change is a single conditional write (UpdateItem, or one TransactWriteItems when
a step's events and the head that publishes them must land together). A failed condition
returns the old item (``ReturnValuesOnConditionCheckFailure=ALL_OLD``) instead of a read
before the write; ``ClientError`` codes become domain errors here and nowhere else.
"""

from turnstop.store.dynamo import CommitRejected, Store

__all__ = ["CommitRejected", "Store"]
