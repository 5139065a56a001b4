"""Each function's IAM grants as the template states them, for the least-privilege test.

A function's ``Policies`` should be plain statements whose resources are the forms the template
uses; each grant becomes ``(action, resource)`` with the resource named by logical id, the way
:mod:`turnstop_local.aws_calls` records calls:

- ``!GetAtt TurnTable.Arn`` → ``table/TurnTable``; ``!Sub ${TurnTable.Arn}/index/gsi4`` →
  ``table/TurnTable/index/gsi4``;
- ``!GetAtt TurnQueue.Arn`` → ``queue/TurnQueue``;
- ``!Sub arn:${AWS::Partition}:events:...:event-bus/${EventBusName}`` → ``event-bus/<name>``;
- ``!Sub arn:${AWS::Partition}:bedrock:*::foundation-model/*`` → ``foundation-model/*`` (and
  ``inference-profile/*``): a ``<kind>/*`` grant covers every resource of that kind.

A policy under ``!If [Condition, {Statement: ...}, !Ref AWS::NoValue]`` (a grant only some
deployments make, e.g. the model keys' secrets) is read as granted, and never reported unused.

Anything else is reported as a problem rather than guessed at. The two SAM policy templates the
template once used (``DynamoDBCrudPolicy``, ``SQSSendMessagePolicy``) are read as what they grant,
so that a call they do not cover is still told apart, and reported as problems: they grant more
than a function names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from turnstop_local.template import QUEUE_TYPE, TABLE_TYPE, Template

__all__ = ["Grants", "function_grants", "unallowed", "unused"]

_SUB_ATT = re.compile(r"^\$\{(\w+)\.Arn\}(/index/[\w.-]+)?$")
_SUB_BUS = re.compile(r"^arn:\$\{AWS::Partition\}:events:\$\{AWS::Region\}:\$\{AWS::AccountId\}:event-bus/(.+)$")
_PARAM = re.compile(r"\$\{(\w+)\}")
_SUB_BEDROCK = re.compile(
    r"^arn:\$\{AWS::Partition\}:bedrock:[^:]*:(?:\$\{AWS::AccountId\}|[^:]*):(foundation-model|inference-profile)/\*$"
)

# What SAM's policy templates grant (its policy_templates.json), by the resource they name.
_SAM_CRUD = (
    "GetItem DeleteItem PutItem Scan Query UpdateItem BatchWriteItem BatchGetItem DescribeTable ConditionCheckItem"
)


@dataclass
class Grants:
    """One function's grants, and what in its policies could not be read as grants."""

    allowed: set[tuple[str, str]] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    conditional: set[tuple[str, str]] = field(default_factory=set)  # granted by some deployments only


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_name(template: Template, value: Any) -> str | None:
    """The logical name of a policy resource (see the module), or None when it is not understood."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target, attribute = value["Fn::GetAtt"][0], value["Fn::GetAtt"][1]
        kind = (template.resources.get(target) or {}).get("Type")
        if attribute == "Arn" and kind == TABLE_TYPE:
            return f"table/{target}"
        if attribute == "Arn" and kind == QUEUE_TYPE:
            return f"queue/{target}"
        return None
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        text = value["Fn::Sub"]
        match = _SUB_ATT.match(text)
        if match and (template.resources.get(match.group(1)) or {}).get("Type") == TABLE_TYPE:
            return f"table/{match.group(1)}{match.group(2) or ''}"
        match = _SUB_BEDROCK.match(text)
        if match:
            return f"{match.group(1)}/*"
        match = _SUB_BUS.match(text)
        if match:
            bus = _PARAM.sub(lambda m: str(template.parameters.get(m.group(1), m.group(0))), match.group(1))
            return f"event-bus/{bus}"
    return None


def function_grants(template: Template, function_id: str) -> Grants:
    """What ``function_id``'s ``Policies`` allow, as (action, logical resource) pairs."""
    grants = Grants()
    for policy in template.function(function_id).properties.get("Policies") or []:
        if isinstance(policy, dict) and set(policy) == {"Fn::If"}:
            before = set(grants.allowed)
            _statements(template, function_id, policy["Fn::If"][1], grants)
            grants.conditional |= grants.allowed - before
            continue
        if not (isinstance(policy, dict) and set(policy) == {"Statement"}):
            name = next(iter(policy)) if isinstance(policy, dict) else policy
            grants.problems.append(f"{function_id}: policy {name} is not a plain statement list")
            _sam_template_grants(template, policy, grants)
            continue
        _statements(template, function_id, policy, grants)
    return grants


def _statements(template: Template, function_id: str, policy: Any, grants: Grants) -> None:
    if not (isinstance(policy, dict) and "Statement" in policy):
        grants.problems.append(f"{function_id}: a conditional policy is not a statement list")
        return
    for statement in _as_list(policy["Statement"]):
        if statement.get("Effect") != "Allow" or "Condition" in statement:
            grants.problems.append(f"{function_id}: only unconditional Allow statements are read: {statement}")
            continue
        for resource in _as_list(statement.get("Resource")):
            name = resource_name(template, resource)
            if isinstance(resource, dict) and set(resource) == {"Ref"} and resource["Ref"] in template.parameters:
                name = f"parameter/{resource['Ref']}"  # ARNs the deployment names (the routes' key secrets)
            if name is None:
                grants.problems.append(f"{function_id}: resource {resource!r} is not understood")
                continue
            for action in _as_list(statement.get("Action")):
                if "*" in str(action):
                    grants.problems.append(f"{function_id}: wildcard action {action}")
                grants.allowed.add((str(action), name))


def _sam_template_grants(template: Template, policy: Any, grants: Grants) -> None:
    if not isinstance(policy, dict):
        return
    if "DynamoDBCrudPolicy" in policy:
        table = next(
            (lid for lid in template.table_ids if policy["DynamoDBCrudPolicy"].get("TableName") == {"Ref": lid}), "?"
        )
        for action in _SAM_CRUD.split():
            grants.allowed |= {
                (f"dynamodb:{action}", f"table/{table}"),
                (f"dynamodb:{action}", f"table/{table}/index/*"),
            }
    if "SQSSendMessagePolicy" in policy:
        name = policy["SQSSendMessagePolicy"].get("QueueName") or {}
        queue = (name.get("Fn::GetAtt") or ["?"])[0] if isinstance(name, dict) else "?"
        grants.allowed |= {("sqs:SendMessage", f"queue/{queue}"), ("sqs:SendMessageBatch", f"queue/{queue}")}


def allows(grants: Grants, action: str, resource: str) -> bool:
    """Whether the grants cover one call (an ``index/*`` grant covers every index of its table)."""
    if (action, resource) in grants.allowed:
        return True
    kind, slash, _ = resource.partition("/")
    if slash and kind in ("foundation-model", "inference-profile") and (action, f"{kind}/*") in grants.allowed:
        return True
    table, sep, _ = resource.partition("/index/")
    return bool(sep) and (action, f"{table}/index/*") in grants.allowed


def unallowed(template: Template, calls: Iterable[tuple[str, str, str]]) -> list[str]:
    """The recorded (function, action, resource) calls the function's policy does not allow."""
    grants: dict[str, Grants] = {}
    out = []
    for function, action, resource in sorted(calls):
        if function not in grants:
            grants[function] = function_grants(template, function)
        if not allows(grants[function], action, resource):
            out.append(f"{function} calls {action} on {resource}, which its policy does not allow")
    return out


def unused(
    template: Template,
    calls: Iterable[tuple[str, str, str]],
    exceptions: Mapping[tuple[str, str, str], str],
) -> list[str]:
    """Grants no recorded call used and no exception explains (a reason each)."""
    used = set(calls)
    out = []
    for function in sorted(template.functions):
        grants = function_grants(template, function)
        for action, resource in sorted(grants.allowed - grants.conditional):
            key = (function, action, resource)
            covered = any(f == function and allows(Grants({(action, resource)}), a, r) for f, a, r in used)
            if key not in used and not covered and key not in exceptions:
                out.append(f"{function} is granted {action} on {resource}, which no e2e path used")
    return out
