"""Shared fixtures: the SAM template translated to CloudFormation, and the stack created in moto.

The translation runs offline (samtranslator): local `CodeUri`s become an S3 placeholder and the
managed-policy loader is a stub (the template attaches no managed policies; a test checks that).
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

# Parameters a real deployment must supply; everything else keeps its default.
STACK_PARAMETERS = {
    "SenderEmail": "no-reply@reimbi.example",
    "AppBaseUrl": "https://app.reimbi.example",
    "JwtIssuer": "https://auth.reimbi.example",
    "JwtAudience": "reimbi-admin",
    # The stack is thrown away with the emulator.
    "TableDeletionProtection": "false",
}

# What moto must not (the Lambda functions: see toolchain.md on SES data) or cannot create.
STRIPPED_TYPES = (
    "AWS::Lambda::",
    "AWS::ApiGatewayV2::",
)


class _NoManagedPolicies:
    """Stands in for the loader that would ask IAM for the AWS managed policies' ARNs."""

    def load(self) -> dict[str, str]:
        return {}


def load_sam_template() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(TEMPLATE.read_text())


def translate(sam: dict[str, Any]) -> dict[str, Any]:
    """SAM -> CloudFormation, as the `AWS::Serverless` transform would do it at deploy time."""
    from samtranslator.translator.transform import transform

    sam = copy.deepcopy(sam)
    placeholder = "s3://reimbi-template-tests/code.zip"
    globals_fn = sam.get("Globals", {}).get("Function", {})
    if isinstance(globals_fn.get("CodeUri"), str) and not globals_fn["CodeUri"].startswith("s3://"):
        globals_fn["CodeUri"] = placeholder
    for res in sam["Resources"].values():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            if not props["CodeUri"].startswith("s3://"):
                props["CodeUri"] = placeholder
    # samtranslator resolves pseudo parameters (AWS::Region) through a boto session.
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))
    return transform(sam, {}, _NoManagedPolicies())


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    return load_sam_template()


@pytest.fixture(scope="session")
def cfn(sam_template: dict[str, Any]) -> dict[str, Any]:
    return translate(sam_template)


def references(node: Any) -> set[str]:
    """Logical ids a template fragment refers to (Ref, GetAtt, ${X} / ${X.Attr} in Sub)."""
    import re

    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
                if isinstance(value, list):
                    found.update(references(value[1]))
            else:
                found.update(references(value))
    elif isinstance(node, list):
        for item in node:
            found.update(references(item))
    return found


def strip_for_moto(cfn: dict[str, Any]) -> dict[str, Any]:
    """The translated template without the functions and the API, and whatever refers to them."""
    cfn = copy.deepcopy(cfn)
    resources = cfn["Resources"]
    removed = {lid for lid, r in resources.items() if r["Type"].startswith(STRIPPED_TYPES)}
    while True:
        dependents = {
            lid
            for lid, r in resources.items()
            if lid not in removed and (references(r) | set(_depends_on(r))) & removed
        }
        if not dependents:
            break
        removed |= dependents
    for lid in removed:
        del resources[lid]
    cfn["Outputs"] = {k: v for k, v in cfn.get("Outputs", {}).items() if not references(v) & removed}
    return cfn


def _depends_on(resource: dict[str, Any]) -> list[str]:
    d = resource.get("DependsOn", [])
    return [d] if isinstance(d, str) else d


def moto_endpoint() -> str:
    """The emulator's URL; fails (never skips) when it is not configured or not answering."""
    import urllib.request

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        pytest.fail("AWS_ENDPOINT_URL is not set: start moto_server and point AWS_ENDPOINT_URL at it", pytrace=False)
    try:
        with urllib.request.urlopen(f"{endpoint.rstrip('/')}/moto-api/", timeout=5) as resp:
            resp.read()
    except OSError as e:
        pytest.fail(f"moto does not answer at {endpoint}: {e}", pytrace=False)
    return endpoint


@pytest.fixture(scope="session")
def aws_session():
    import boto3

    endpoint = moto_endpoint()
    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
    )
    return session, endpoint


@pytest.fixture(scope="session")
def stack(cfn: dict[str, Any], aws_session) -> dict[str, Any]:
    """Creates the stack in moto and returns its outputs and physical resource ids."""
    session, endpoint = aws_session
    client = session.client("cloudformation", endpoint_url=endpoint)
    name = f"reimbi-template-{uuid.uuid4().hex[:10]}"
    body = strip_for_moto(cfn)
    client.create_stack(
        StackName=name,
        TemplateBody=json.dumps(body),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in STACK_PARAMETERS.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    client.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    described = client.describe_stacks(StackName=name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in client.list_stack_resources(StackName=name)["StackResourceSummaries"]
    }
    return {"name": name, "outputs": outputs, "physical": physical, "template": body}
