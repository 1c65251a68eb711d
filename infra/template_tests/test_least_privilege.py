"""Each function's role may touch only what the function needs (issue 6), read from the translated template."""

from __future__ import annotations

import pytest

from cfn_model import grants, statements

TABLE = {"${Table.Arn}", "${Table.Arn}/index/gsi1"}
SECRET_ARN = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretsPrefix}"
SIGNING_SECRETS = SECRET_ARN + "webhook-signing/*"
API_KEY_SECRETS = SECRET_ARN + "ashby-api-key/*"
QUEUE = {"${EventsQueue.Arn}"}
SES_IDENTITIES = {
    "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderEmail}",
    "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/select(1, split('@', ${SenderEmail}))",
}
XRAY = {"xray:PutTraceSegments": {"*"}, "xray:PutTelemetryRecords": {"*"}}

FUNCTIONS = {"WebhookFunction": "WebhookRole", "ProcessorFunction": "ProcessorRole", "SettingsFunction": "SettingsRole"}


def logs(group: str) -> dict[str, set[str]]:
    return {"logs:CreateLogStream": {f"${{{group}.Arn}}"}, "logs:PutLogEvents": {f"${{{group}.Arn}}"}}


EXPECTED = {
    "WebhookRole": {
        **logs("WebhookLogGroup"),
        "dynamodb:GetItem": TABLE,
        "dynamodb:Query": TABLE,
        "dynamodb:PutItem": TABLE,
        "dynamodb:UpdateItem": TABLE,
        "secretsmanager:GetSecretValue": {SIGNING_SECRETS},
        "sqs:SendMessage": QUEUE,
    },
    "ProcessorRole": {
        **logs("ProcessorLogGroup"),
        "dynamodb:GetItem": TABLE,
        "dynamodb:Query": TABLE,
        "dynamodb:PutItem": TABLE,
        "dynamodb:UpdateItem": TABLE,
        "secretsmanager:GetSecretValue": {API_KEY_SECRETS},
        "ses:SendEmail": SES_IDENTITIES,
        "ses:SendRawEmail": SES_IDENTITIES,
        "sqs:ReceiveMessage": QUEUE,
        "sqs:DeleteMessage": QUEUE,
        "sqs:ChangeMessageVisibility": QUEUE,
        "sqs:GetQueueAttributes": QUEUE,
    },
    "SettingsRole": {
        **logs("SettingsLogGroup"),
        "dynamodb:GetItem": TABLE,
        "dynamodb:Query": TABLE,
        "dynamodb:PutItem": TABLE,
        "dynamodb:UpdateItem": TABLE,
        "secretsmanager:GetSecretValue": {SIGNING_SECRETS, API_KEY_SECRETS},
        "secretsmanager:DescribeSecret": {SIGNING_SECRETS, API_KEY_SECRETS},
        "secretsmanager:CreateSecret": {SIGNING_SECRETS, API_KEY_SECRETS},
        "secretsmanager:PutSecretValue": {SIGNING_SECRETS, API_KEY_SECRETS},
    },
}

TRACING = [pytest.param(False, id="tracing-off"), pytest.param(True, id="tracing-on")]


def conditions(tracing: bool) -> dict[str, bool]:
    return {"TracingOn": tracing, "HasAlarmTopic": False, "DeletionProtectionOn": True}


@pytest.mark.parametrize("tracing", TRACING)
@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_each_role_grants_exactly_the_expected_actions_on_the_expected_resources(cfn, role, tracing):
    expected = dict(EXPECTED[role])
    if tracing:
        expected.update(XRAY)
    assert grants(cfn["Resources"][role], conditions(tracing)) == expected


@pytest.mark.parametrize("function,role", sorted(FUNCTIONS.items()))
def test_each_function_runs_with_its_own_role_and_no_managed_policies(cfn, function, role):
    resources = cfn["Resources"]
    assert resources[function]["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}
    assert not resources[role]["Properties"].get("ManagedPolicyArns"), "managed policies carry '*' resources"
    roles = [lid for lid, r in resources.items() if r["Type"] == "AWS::IAM::Role"]
    assert sorted(roles) == sorted(FUNCTIONS.values()), "no other role exists (SAM generated none)"


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_only_lambda_can_assume_the_roles(cfn, role):
    doc = cfn["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]
    assert doc["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_no_statement_uses_wildcard_actions_or_negations(cfn, role):
    for st in statements(cfn["Resources"][role], conditions(True)):
        assert not st["NotAction"] and not st["NotResource"], st["Sid"]
        for action in st["Action"]:
            assert "*" not in action, f"{role}/{st['Sid']}: wildcard action {action}"


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_a_star_resource_is_only_used_for_xray_which_has_no_resource_level_permissions(cfn, role):
    for st in statements(cfn["Resources"][role], conditions(True)):
        if "*" in st["Resource"]:
            assert all(a.startswith("xray:") for a in st["Action"]), f"{role}/{st['Sid']} grants {st['Action']} on *"


def test_webhook_role_can_neither_delete_nor_scan(cfn):
    actions = grants(cfn["Resources"]["WebhookRole"], conditions(True))
    forbidden = [a for a in actions if any(w in a for w in ("Delete", "Scan", "Batch", "Transact"))]
    assert forbidden == []


def test_webhook_role_never_reaches_an_ashby_api_key(cfn):
    for action, resources in grants(cfn["Resources"]["WebhookRole"], conditions(True)).items():
        for resource in resources:
            assert "ashby-api-key" not in resource, action
            if action.startswith("secretsmanager:"):
                assert resource.endswith("webhook-signing/*"), resource


def test_processor_role_cannot_create_or_change_secrets(cfn):
    actions = grants(cfn["Resources"]["ProcessorRole"], conditions(True))
    assert [a for a in actions if a.startswith("secretsmanager:")] == ["secretsmanager:GetSecretValue"]
    assert actions["secretsmanager:GetSecretValue"] == {API_KEY_SECRETS}


def test_processor_sends_email_only_from_the_sender_address(cfn):
    ses = [st for st in statements(cfn["Resources"]["ProcessorRole"], conditions(False)) if st["Action"][0].startswith("ses:")]
    assert len(ses) == 1
    assert ses[0]["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "SenderEmail"}}}
    assert set(ses[0]["Resource"]) == SES_IDENTITIES


def test_table_grants_name_the_one_index_the_code_queries(cfn):
    for role in EXPECTED:
        for action, resources in grants(cfn["Resources"][role], conditions(False)).items():
            if action.startswith("dynamodb:"):
                assert resources == TABLE, f"{role} {action}"


# SDK calls the AWS adapters make -> the IAM action each needs. `create_table` and
# `update_time_to_live` only serve tests and `reimbi-local --aws`; the template creates the table.
ADAPTER_CALLS = {
    "dynamo.rs": "dynamodb",
    "sqs.rs": "sqs",
    "secretsmanager.rs": "secretsmanager",
    "ses.rs": "ses",
}
NOT_AT_RUNTIME = {"dynamodb:CreateTable", "dynamodb:UpdateTimeToLive", "dynamodb:DescribeTable"}


def adapter_actions() -> dict[str, set[str]]:
    import re

    from conftest import ROOT

    out: dict[str, set[str]] = {}
    for file, service in ADAPTER_CALLS.items():
        source = (ROOT / "shared/src/adapters" / file).read_text()
        calls = set(re.findall(r"\.([a-z_]+)\(\)", source))
        actions = {f"{service}:" + "".join(w.capitalize() for w in c.split("_")) for c in calls}
        out[service] = actions & KNOWN_ACTIONS
    return out


def test_every_aws_call_the_adapters_make_is_granted_to_some_role(cfn):
    granted = set()
    for role in EXPECTED:
        granted |= set(grants(cfn["Resources"][role], conditions(False)))
    for service, actions in adapter_actions().items():
        assert actions, f"found no {service} calls in the adapter: has it been written?"
        missing = actions - granted - NOT_AT_RUNTIME
        assert missing == set(), f"the adapters call {missing} but no role may"


def test_no_role_is_granted_a_table_action_the_code_never_calls(cfn):
    used = adapter_actions()["dynamodb"]
    for role in EXPECTED:
        for action in grants(cfn["Resources"][role], conditions(False)):
            if action.startswith("dynamodb:"):
                assert action in used, f"{role} may {action}, which the DynamoDB adapter never calls"


# The operations recognised in the adapters' `.operation()` calls (other methods are builders).
KNOWN_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:TransactGetItems",
    "dynamodb:CreateTable",
    "dynamodb:DescribeTable",
    "dynamodb:UpdateTimeToLive",
    "sqs:SendMessage",
    "sqs:SendMessageBatch",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:CreateSecret",
    "secretsmanager:DescribeSecret",
    "ses:SendEmail",
    "ses:SendRawEmail",
}
