"""The template and the Rust code agree: binaries, environment variables, table keys, queue limits,
routes. These read the translated template and the sources; the moto tests check the created stack."""

from __future__ import annotations

import re
import tomllib

import pytest

from cfn_model import render
from conftest import ROOT

FUNCTIONS = {"WebhookFunction": "webhook", "ProcessorFunction": "processor", "SettingsFunction": "settings"}

# Contract section 4, plus what the shared design adds (processor QUEUE_URL, MAX_RECEIVE_COUNT)
# and RUST_LOG for every function.
ENVIRONMENT = {
    "WebhookFunction": {"TABLE_NAME", "QUEUE_URL", "SECRETS_PREFIX", "WEBHOOK_ROTATION_GRACE", "RUST_LOG"},
    "ProcessorFunction": {
        "TABLE_NAME",
        "QUEUE_URL",
        "SECRETS_PREFIX",
        "SENDER_EMAIL",
        "APP_BASE_URL",
        "ASHBY_API_URL",
        "MAX_RECEIVE_COUNT",
        "RUST_LOG",
    },
    "SettingsFunction": {
        "TABLE_NAME",
        "SECRETS_PREFIX",
        "ASHBY_API_URL",
        "PUBLIC_BASE_URL",
        "WEBHOOK_ROTATION_GRACE",
        "RUST_LOG",
    },
}

# Contract section 2: every admin route, each behind the JWT authorizer.
ADMIN_ROUTES = {
    ("get", "/companies/{companyId}/integrations/ashby"),
    ("put", "/companies/{companyId}/integrations/ashby"),
    ("post", "/companies/{companyId}/integrations/ashby/webhook-credentials"),
    ("get", "/companies/{companyId}/integrations/ashby/events"),
    ("get", "/companies/{companyId}/integrations/ashby/health"),
    ("put", "/companies/{companyId}/policies/{policyId}"),
    ("get", "/companies/{companyId}/policies"),
    ("put", "/companies/{companyId}/staff/{email}"),
    ("get", "/companies/{companyId}/staff"),
    ("get", "/companies/{companyId}/candidates"),
    ("get", "/companies/{companyId}/candidates/{candidateId}"),
}
WEBHOOK_ROUTE = ("post", "/webhooks/ashby/{webhookId}")

# AWS_* are set by Lambda itself.
LAMBDA_PROVIDED = re.compile(r"^(AWS_|_X_AMZN|LAMBDA_)")


def env_vars_read_by(binary: str) -> set[str]:
    """Environment variables a function's `main.rs` reads, directly or through `config::` helpers."""
    config_rs = (ROOT / "shared/src/config.rs").read_text()
    helper_vars: dict[str, set[str]] = {}
    for m in re.finditer(r"pub fn (\w+)\([^)]*\)[^{]*\{(.*?)\n\}", config_rs, re.S):
        helper_vars[m.group(1)] = set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', m.group(2)))
    main = (ROOT / f"functions/{binary}/src/main.rs").read_text()
    found = set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', main))
    for helper in re.findall(r"config::(\w+)\(", main):
        found |= helper_vars.get(helper, set())
    return {v for v in found if not LAMBDA_PROVIDED.match(v)}


@pytest.mark.parametrize("function,binary", sorted(FUNCTIONS.items()))
def test_each_function_builds_its_own_binary_for_arm64_on_al2023(cfn, function, binary):
    fn = cfn["Resources"][function]
    assert fn["Metadata"] == {"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": binary}}
    props = fn["Properties"]
    assert (props["Runtime"], props["Architectures"], props["Handler"]) == ("provided.al2023", ["arm64"], "bootstrap")
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    cargo = tomllib.loads((ROOT / f"functions/{binary}/Cargo.toml").read_text())
    assert binary in [b["name"] for b in cargo.get("bin", [])], f"functions/{binary} has no [[bin]] {binary}"


@pytest.mark.parametrize("function", sorted(ENVIRONMENT))
def test_each_function_gets_exactly_its_environment(cfn, function):
    variables = cfn["Resources"][function]["Properties"]["Environment"]["Variables"]
    assert set(variables) == ENVIRONMENT[function]
    assert variables["TABLE_NAME"] == {"Ref": "Table"}
    assert variables["SECRETS_PREFIX"] == {"Ref": "SecretsPrefix"}
    if "QUEUE_URL" in variables:
        assert variables["QUEUE_URL"] == {"Ref": "EventsQueue"}


@pytest.mark.parametrize("function,binary", sorted(FUNCTIONS.items()))
def test_every_variable_a_function_reads_is_set_by_the_template(cfn, function, binary):
    read = env_vars_read_by(binary)
    assert read, f"functions/{binary}/src/main.rs reads no configuration: is it written?"
    variables = set(cfn["Resources"][function]["Properties"]["Environment"]["Variables"])
    assert read - variables == set(), f"{binary} reads variables the template does not set"


def test_max_receive_count_is_one_parameter_shared_by_the_redrive_policy_and_the_processor(sam_template, cfn):
    queue = cfn["Resources"]["EventsQueue"]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}
    env = cfn["Resources"]["ProcessorFunction"]["Properties"]["Environment"]["Variables"]
    assert env["MAX_RECEIVE_COUNT"] == {"Ref": "MaxReceiveCount"}
    config_rs = (ROOT / "shared/src/config.rs").read_text()
    code_default = int(re.search(r"DEFAULT_MAX_RECEIVE_COUNT: u32 = (\d+);", config_rs).group(1))
    assert int(sam_template["Parameters"]["MaxReceiveCount"]["Default"]) == code_default == 5


def test_visibility_timeout_is_at_least_six_times_the_processor_timeout(cfn):
    timeout = cfn["Resources"]["ProcessorFunction"]["Properties"]["Timeout"]
    assert cfn["Resources"]["EventsQueue"]["Properties"]["VisibilityTimeout"] >= 6 * timeout


def test_queues_are_encrypted(cfn):
    for q in ("EventsQueue", "EventsDeadLetterQueue"):
        assert cfn["Resources"][q]["Properties"]["SqsManagedSseEnabled"] is True


def test_processor_reports_partial_batch_failures_with_bounded_concurrency(cfn):
    mappings = [r for r in cfn["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == 1
    props = mappings[0]["Properties"]
    assert props["FunctionName"] == {"Ref": "ProcessorFunction"}
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == {"Ref": "ProcessorBatchSize"}
    assert props["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "ProcessorMaxConcurrency"}}


def test_table_has_the_keys_index_and_ttl_the_code_uses(cfn):
    table = cfn["Resources"]["Table"]
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert {(a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]} == {
        ("pk", "S"),
        ("sk", "S"),
        ("gsi1pk", "S"),
        ("gsi1sk", "S"),
    }
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "gsi1",
            "KeySchema": [
                {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] == {"Fn::If": ["DeletionProtectionOn", True, False]}
    assert table["DeletionPolicy"] == "Retain"


def test_the_code_uses_the_same_key_names_as_the_template():
    dynamo_rs = (ROOT / "shared/src/adapters/dynamo.rs").read_text()
    for name in ('"pk"', '"sk"', '"gsi1"', '"gsi1pk"', '"gsi1sk"', '"ttl"'):
        assert name in dynamo_rs, f"shared/src/adapters/dynamo.rs never names {name}"


def _routes(cfn) -> dict[tuple[str, str], dict]:
    body = cfn["Resources"]["HttpApi"]["Properties"]["Body"]
    return {
        (method, path): op for path, ops in body["paths"].items() for method, op in ops.items() if isinstance(op, dict)
    }


def test_the_webhook_route_is_public_and_every_admin_route_needs_the_jwt_authorizer(cfn):
    routes = _routes(cfn)
    assert set(routes) == ADMIN_ROUTES | {WEBHOOK_ROUTE}
    assert routes[WEBHOOK_ROUTE]["security"] == [{"NONE": []}]
    assert "WebhookFunction.Arn" in render(routes[WEBHOOK_ROUTE]["x-amazon-apigateway-integration"]["uri"])
    for route in ADMIN_ROUTES:
        assert routes[route]["security"] == [{"AdminJwt": []}], route
        assert "SettingsFunction.Arn" in render(routes[route]["x-amazon-apigateway-integration"]["uri"]), route
        assert routes[route]["x-amazon-apigateway-integration"]["payloadFormatVersion"] == "2.0"


def test_the_jwt_authorizer_takes_issuer_and_audience_from_parameters(cfn):
    body = cfn["Resources"]["HttpApi"]["Properties"]["Body"]
    scheme = body["components"]["securitySchemes"]["AdminJwt"]
    authorizer = scheme["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "jwt"
    assert authorizer["jwtConfiguration"] == {"issuer": {"Ref": "JwtIssuer"}, "audience": {"Ref": "JwtAudience"}}
    assert authorizer["identitySource"] == "$request.header.Authorization"


def test_the_api_stage_throttles_and_writes_an_access_log(cfn):
    stage = cfn["Resources"]["HttpApiApiGatewayDefaultStage"]["Properties"]
    settings = stage["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    assert stage["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    log_format = stage["AccessLogSettings"]["Format"]
    for leak in ("header", "body", "querystring", "authorization"):
        assert leak not in log_format.lower(), f"the access log must not record {leak}"


def test_alarms_cover_the_dead_letter_queue_processor_errors_and_webhook_5xx(cfn):
    alarms = {lid: r["Properties"] for lid, r in cfn["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    dlq = alarms["DeadLetterQueueNotEmptyAlarm"]
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["EventsDeadLetterQueue", "QueueName"]}}]
    assert (dlq["MetricName"], dlq["Threshold"], dlq["ComparisonOperator"]) == (
        "ApproximateNumberOfMessagesVisible",
        0,
        "GreaterThanThreshold",
    )
    errors = alarms["ProcessorErrorsAlarm"]
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "ProcessorFunction"}}]
    rate = alarms["Webhook5xxRateAlarm"]
    stats = {m["Id"]: m["MetricStat"]["Metric"] for m in rate["Metrics"] if "MetricStat" in m}
    assert stats["errors"]["MetricName"] == "5xx" and stats["requests"]["MetricName"] == "Count"
    for metric in stats.values():
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dims == {"ApiId": {"Ref": "HttpApi"}, "Stage": "$default", "Method": "POST", "Resource": WEBHOOK_ROUTE[1]}
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


def test_outputs_name_the_api_the_queue_and_the_table(cfn):
    outputs = cfn["Outputs"]
    assert outputs["TableName"]["Value"] == {"Ref": "Table"}
    assert outputs["QueueUrl"]["Value"] == {"Ref": "EventsQueue"}
    assert render(outputs["ApiBaseUrl"]["Value"]).startswith("https://${HttpApi}.execute-api.")
