"""The intrinsic-function evaluator: ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Select``...

Values are resolved with local names for the template's resources (:class:`LocalResources`, created
by :mod:`turnstop_local.store`): a ``!Ref`` to a table is the local table name, a ``!GetAtt
Queue.Arn`` the local queue's ARN, and pseudo parameters name the local stack.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

from turnstop_local.template.loader import TemplateError, is_intrinsic
from turnstop_local.template.specs import (
    FUNCTION_TYPE,
    LAYER_TYPE,
    LOCAL_STACK_NAME,
    QUEUE_TYPE,
    TABLE_TYPE,
    LocalResources,
)

__all__ = ["NO_VALUE", "Intrinsics", "env_string"]

NO_VALUE: Any = object()  # AWS::NoValue: the key that holds it is dropped
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_CONDITION_KEYS = ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not", "Condition")


def env_string(value: Any) -> str:
    """Lambda environment values are strings; YAML may have produced ints or bools."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Intrinsics:
    """Evaluates the intrinsic functions of one template."""

    def __init__(
        self,
        resources: Mapping[str, Mapping[str, Any]],
        parameters: Mapping[str, Any],
        conditions: Mapping[str, Any],
    ) -> None:
        self.resources = resources
        self.parameters = parameters
        self.conditions = conditions
        self._functions: dict[str, Callable[[Any, LocalResources], Any]] = {
            "Ref": lambda arg, res: self.ref(str(arg), res),
            "Fn::GetAtt": self._fn_get_att,
            "Fn::Sub": self.sub,
            "Fn::Join": self._fn_join,
            "Fn::Select": self._fn_select,
            "Fn::Split": self._fn_split,
            "Fn::Base64": lambda arg, res: base64.b64encode(str(self.resolve(arg, res)).encode()).decode(),
            "Fn::If": self._fn_if,
        }

    def resolve(self, value: Any, resources: LocalResources | None = None) -> Any:
        """Evaluate the intrinsic functions in ``value`` with local names for resources."""
        res = resources or LocalResources()
        if isinstance(value, list):
            return [v for v in (self.resolve(i, res) for i in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if not is_intrinsic(value):
            resolved = {k: self.resolve(v, res) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        ((key, arg),) = value.items()
        function = self._functions.get(key)
        if function is not None:
            return function(arg, res)
        if key in _CONDITION_KEYS:
            return self.evaluate_condition(value, res)
        raise TemplateError(f"cannot resolve {key} locally: {value!r}")

    # ------------------------------------------------------------------ Fn::*

    def _fn_get_att(self, arg: Any, res: LocalResources) -> Any:
        parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
        return self.get_att(str(parts[0]), str(self.resolve(parts[1], res)), res)

    def _fn_join(self, arg: Any, res: LocalResources) -> str:
        separator, items = arg
        return str(separator).join(env_string(i) for i in self.resolve(items, res))

    def _fn_select(self, arg: Any, res: LocalResources) -> Any:
        index, items = self.resolve(arg, res)
        return items[int(index)]

    def _fn_split(self, arg: Any, res: LocalResources) -> list[str]:
        separator, text = self.resolve(arg, res)
        return str(text).split(str(separator))

    def _fn_if(self, arg: Any, res: LocalResources) -> Any:
        condition, when_true, when_false = arg
        return self.resolve(when_true if self.condition(str(condition), res) else when_false, res)

    # ------------------------------------------------------------------ conditions

    def condition(self, name: str, resources: LocalResources) -> bool:
        """The value of the template's condition ``name``."""
        if name not in self.conditions:
            raise TemplateError(f"unknown condition {name!r}")
        return self.evaluate_condition(self.conditions[name], resources)

    def evaluate_condition(self, expression: Any, resources: LocalResources) -> bool:
        ((key, arg),) = expression.items()
        if key == "Condition":
            return self.condition(str(arg), resources)
        if key == "Fn::Equals":
            left, right = (self.resolve(a, resources) for a in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.evaluate_condition(arg[0], resources)
        if key == "Fn::And":
            return all(self.evaluate_condition(a, resources) for a in arg)
        if key == "Fn::Or":
            return any(self.evaluate_condition(a, resources) for a in arg)
        raise TemplateError(f"unsupported condition {expression!r}")

    # ------------------------------------------------------------------ names

    def _type_of(self, name: str) -> Any:
        return (self.resources.get(name) or {}).get("Type")

    def ref(self, name: str, res: LocalResources) -> Any:
        """``!Ref name``: a pseudo parameter, a parameter, or the local name of a resource."""
        pseudo = {
            "AWS::Region": res.region,
            "AWS::AccountId": res.account_id,
            "AWS::StackName": LOCAL_STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{res.region}:{res.account_id}:stack/{LOCAL_STACK_NAME}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        resource_type = self._type_of(name)
        if resource_type == TABLE_TYPE:
            return res.tables.get(name, name)
        if resource_type == QUEUE_TYPE:
            queue = res.queues.get(name)
            return queue.url if queue else name
        if resource_type == LAYER_TYPE:
            return f"arn:aws:lambda:{res.region}:{res.account_id}:layer:{name}:1"
        # Functions, APIs and anything else: the logical id is the local physical name.
        return name

    def get_att(self, name: str, attribute: str, res: LocalResources) -> Any:
        """``!GetAtt name.attribute`` for the resources that have a local equivalent."""
        resource_type = self._type_of(name)
        if resource_type == TABLE_TYPE:
            table = res.tables.get(name, name)
            arn = f"arn:aws:dynamodb:{res.region}:{res.account_id}:table/{table}"
            return {"Arn": arn, "StreamArn": f"{arn}/stream/local"}.get(attribute, f"{name}.{attribute}")
        if resource_type == QUEUE_TYPE:
            queue = res.queues.get(name)
            if queue is not None:
                return {"Arn": queue.arn, "QueueName": queue.name, "QueueUrl": queue.url}.get(
                    attribute, f"{name}.{attribute}"
                )
        if resource_type == FUNCTION_TYPE and attribute == "Arn":
            return f"arn:aws:lambda:{res.region}:{res.account_id}:function:{name}"
        return f"{name}.{attribute}"

    def sub(self, arg: Any, res: LocalResources) -> str:
        """``!Sub text`` or ``!Sub [text, {variables}]``."""
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1] if len(arg) > 1 else {})

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} is an escaped literal
            if name in variables:
                return env_string(self.resolve(variables[name], res))
            if "." in name and name.split(".", 1)[0] in self.resources:
                resource, attribute = name.split(".", 1)
                return env_string(self.get_att(resource, attribute, res))
            return env_string(self.ref(name, res))

        return _SUB_VARIABLE.sub(replace, str(text))
