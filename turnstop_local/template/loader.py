"""YAML with CloudFormation short tags, and finding the template.

CloudFormation short tags (``!Ref``, ``!GetAtt``, ``!Sub``...) are loaded as their long form
(``{"Ref": x}``, ``{"Fn::GetAtt": [...]}``...), so the rest of the local runtime only ever sees
plain JSON-shaped data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "FN_TAGS",
    "INTRINSIC_KEYS",
    "CfnLoader",
    "TemplateError",
    "find_template",
    "is_intrinsic",
    "load_yaml",
]


class TemplateError(ValueError):
    """The template says something the local runtime cannot serve faithfully."""


class CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that turns CloudFormation short tags into their long (JSON) form."""


FN_TAGS = (
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "GetAtt",
    "If",
    "ImportValue",
    "Join",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
    "Transform",
    "ToJsonString",
    "Length",
)

# The keys of a one-key mapping that make it an intrinsic function rather than data.
INTRINSIC_KEYS = frozenset({"Ref", "Condition", *(f"Fn::{n}" for n in FN_TAGS)})


def is_intrinsic(value: Any) -> bool:
    """Whether ``value`` is an intrinsic function call (``{"Ref": ...}``, ``{"Fn::Sub": ...}``...)."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in INTRINSIC_KEYS


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


def _register_tags() -> None:
    def plain(key: str) -> Any:
        def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
            return {key: _construct_node(loader, node)}

        return construct

    def get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value = _construct_node(loader, node)
        if isinstance(value, str):
            # "Res.Attr.Sub" means resource "Res", attribute "Attr.Sub" (as CloudFormation reads it).
            resource, _, attribute = value.partition(".")
            value = [resource, attribute]
        return {"Fn::GetAtt": value}

    CfnLoader.add_constructor("!Ref", plain("Ref"))
    CfnLoader.add_constructor("!Condition", plain("Condition"))
    for name in FN_TAGS:
        CfnLoader.add_constructor(f"!{name}", get_att if name == "GetAtt" else plain(f"Fn::{name}"))


_register_tags()


def load_yaml(path: Path) -> dict[str, Any]:
    """Load a CloudFormation/SAM template (short tags allowed) as plain Python data."""
    with open(path, encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=CfnLoader)  # CfnLoader is a SafeLoader
    if not isinstance(document, dict):
        raise TemplateError(f"{path}: not a template (top level is not a mapping)")
    return document


def find_template(start: Path | None = None, name: str = "template.yaml") -> Path:
    """The nearest ``template.yaml`` at or above ``start`` (default: the working directory)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise TemplateError(f"no {name} found in {here} or any parent directory")
