"""Creates the translated stack (minus functions and API) in moto and checks what it created.

The last test hands the created table and queue to the Rust end-to-end test: it writes them to
`$STACK_OUTPUTS_FILE` (JSON) when that variable is set, and prints them.
"""

from __future__ import annotations

import json
import os

from conftest import strip_for_moto


def test_the_moto_stack_leaves_out_only_the_functions_the_api_and_what_refers_to_them(cfn):
    kept = strip_for_moto(cfn)["Resources"]
    for logical_id in (
        "Table",
        "EventsQueue",
        "EventsDeadLetterQueue",
        "WebhookRole",
        "ProcessorRole",
        "SettingsRole",
        "DeadLetterQueueNotEmptyAlarm",
    ):
        assert logical_id in kept
    assert not [t for t in (r["Type"] for r in kept.values()) if t.startswith(("AWS::Lambda::", "AWS::ApiGatewayV2::"))]


def test_the_stack_creates_the_table_the_code_expects(stack, aws_session):
    session, endpoint = aws_session
    table = session.client("dynamodb", endpoint_url=endpoint).describe_table(TableName=stack["physical"]["Table"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        ("pk", "S"),
        ("sk", "S"),
        ("gsi1pk", "S"),
        ("gsi1sk", "S"),
    }
    (gsi,) = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "gsi1"
    assert gsi["KeySchema"] == [
        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
    ]
    assert gsi["Projection"]["ProjectionType"] == "ALL"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_the_stack_creates_a_queue_that_redrives_to_its_dead_letter_queue(stack, aws_session, cfn):
    session, endpoint = aws_session
    sqs = session.client("sqs", endpoint_url=endpoint)
    queue_url = stack["physical"]["EventsQueue"]
    dlq_url = stack["physical"]["EventsDeadLetterQueue"]
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == 5
    assert redrive["deadLetterTargetArn"] == dlq_arn
    processor_timeout = cfn["Resources"]["ProcessorFunction"]["Properties"]["Timeout"]
    assert int(attrs["VisibilityTimeout"]) >= 6 * processor_timeout
    assert attrs.get("SqsManagedSseEnabled") == "true"


def test_the_stack_creates_the_three_roles_with_their_inline_policies(stack, aws_session):
    session, endpoint = aws_session
    iam = session.client("iam", endpoint_url=endpoint)
    for logical_id in ("WebhookRole", "ProcessorRole", "SettingsRole"):
        role_name = stack["physical"][logical_id]
        names = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        assert len(names) == 1, f"{logical_id}: {names}"
        assert iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []


def test_the_outputs_name_the_created_table_and_queue(stack):
    outputs = stack["outputs"]
    assert outputs["TableName"] == stack["physical"]["Table"]
    assert outputs["QueueUrl"] == stack["physical"]["EventsQueue"]
    handoff = {
        "stack": stack["name"],
        "table": outputs["TableName"],
        "queue_url": outputs["QueueUrl"],
        "dlq_url": outputs["DeadLetterQueueUrl"],
    }
    print(f"\nSTACK_TABLE_NAME={handoff['table']}\nSTACK_QUEUE_URL={handoff['queue_url']}")
    if path := os.environ.get("STACK_OUTPUTS_FILE"):
        with open(path, "w") as f:
            json.dump(handoff, f)
