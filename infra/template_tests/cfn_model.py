"""Reads IAM grants out of a translated CloudFormation template, with intrinsics rendered as text.

`${X}` stands for `Ref X` and `${X.Attr}` for `Fn::GetAtt X.Attr`, the way `Fn::Sub` writes them,
so a grant reads like the ARN it becomes: `${Table.Arn}/index/gsi1`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any


def render(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and len(node) == 1:
        (key, value), = node.items()
        if key == "Ref":
            return "${%s}" % value
        if key == "Fn::GetAtt":
            parts = value if isinstance(value, list) else str(value).split(".", 1)
            return "${%s.%s}" % (parts[0], parts[1])
        if key == "Fn::Sub":
            if isinstance(value, str):
                return value
            text, variables = value
            for name, expr in variables.items():
                text = text.replace("${%s}" % name, render(expr))
            return text
        if key == "Fn::Select":
            index, source = value
            return "select(%s, %s)" % (index, render(source))
        if key == "Fn::Split":
            delimiter, source = value
            return "split(%r, %s)" % (delimiter, render(source))
    return json.dumps(node, sort_keys=True)


def resolve_conditions(node: Any, conditions: dict[str, bool]) -> Any:
    """Evaluates `Fn::If` with the given condition values and drops `AWS::NoValue`."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return resolve_conditions(when_true if conditions[name] else when_false, conditions)
        if node == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        out = {}
        for key, value in node.items():
            resolved = resolve_conditions(value, conditions)
            if resolved is not _NO_VALUE:
                out[key] = resolved
        return out
    if isinstance(node, list):
        items = [resolve_conditions(v, conditions) for v in node]
        return [v for v in items if v is not _NO_VALUE]
    return node


_NO_VALUE = object()


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(role: dict[str, Any], conditions: dict[str, bool]) -> list[dict[str, Any]]:
    """The role's inline policy statements, each with `Action` and `Resource` as lists of text."""
    role = resolve_conditions(role, conditions)
    out = []
    for policy in role["Properties"].get("Policies", []):
        for st in as_list(policy["PolicyDocument"]["Statement"]):
            out.append(
                {
                    "Sid": st.get("Sid"),
                    "Effect": st["Effect"],
                    "Action": [a for a in as_list(st.get("Action", []))],
                    "NotAction": as_list(st["NotAction"]) if "NotAction" in st else [],
                    "Resource": [render(r) for r in as_list(st.get("Resource", []))],
                    "NotResource": as_list(st["NotResource"]) if "NotResource" in st else [],
                    "Condition": st.get("Condition"),
                }
            )
    return out


def grants(role: dict[str, Any], conditions: dict[str, bool]) -> dict[str, set[str]]:
    """action -> the resources it is allowed on."""
    out: dict[str, set[str]] = defaultdict(set)
    for st in statements(role, conditions):
        assert st["Effect"] == "Allow", f"unexpected {st['Effect']} statement {st['Sid']}"
        for action in st["Action"]:
            out[action].update(st["Resource"])
    return dict(out)
