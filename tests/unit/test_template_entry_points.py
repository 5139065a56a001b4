"""No public, unauthenticated entry point (issue 20): every route the local runtime serves is,
in AWS, behind an API Gateway API's authorizer (or, for the cookie routes, the function's own
session check, as on the HTTP API) and its throttling. The SSE routes go through a REST API in
response-streaming mode instead of Function URLs."""

from __future__ import annotations

from turnstop_local.template import Template


def test_no_function_has_a_function_url(template: Template) -> None:
    for fid, function in template.functions.items():
        assert "FunctionUrlConfig" not in function.properties, fid
    assert not [k for k, r in template.resources.items() if r.get("Type") == "AWS::Lambda::Url"]


def test_every_streaming_route_is_a_streaming_integration_of_the_rest_api(template: Template) -> None:
    api = template.resources["StreamApi"]["Properties"]
    assert api["Auth"]["DefaultAuthorizer"] == "StreamAuthorizer"
    authorizer = api["Auth"]["Authorizers"]["StreamAuthorizer"]
    assert authorizer["FunctionArn"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    assert authorizer["FunctionPayloadType"] == "REQUEST"
    assert api["MethodSettings"][0]["ThrottlingRateLimit"] == {"Ref": "ApiRateLimit"}
    streamed = {(r.method, r.path, r.function_id) for r in template.routes if r.streaming}
    assert streamed
    integrated = set()
    for fid, function in template.functions.items():
        for event in (function.properties.get("Events") or {}).values():
            if event["Type"] != "Api":
                continue
            props = event["Properties"]
            assert props["RestApiId"] == {"Ref": "StreamApi"}, fid
            assert props["ResponseTransferMode"] == "RESPONSE_STREAM", fid
            if (props.get("Auth") or {}).get("Authorizer") == "NONE":
                assert props["Path"].startswith("/chat"), (fid, props["Path"])  # cookie routes only
            integrated.add((props["Method"], props["Path"], fid))
    assert streamed <= integrated


def test_the_front_door_reaches_only_the_two_apis(template: Template) -> None:
    origins = template.resources["FrontDoor"]["Properties"]["DistributionConfig"]["Origins"]
    domains = {o["Id"]: o["DomainName"]["Fn::Sub"] for o in origins}
    assert domains == {
        "http-api": "${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}",
        "stream-api": "${StreamApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}",
    }
