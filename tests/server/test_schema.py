"""The running server against its own OpenAPI document, with schemathesis: generated requests
to every operation never get a 500, every answer matches the document, and the token the
document requires is enforced."""

from __future__ import annotations

from typing import Any

import pytest
from _server import TOKEN, Server
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.slow  # schemathesis: hundreds of requests

schemathesis = pytest.importorskip("schemathesis")
checks = pytest.importorskip("schemathesis.specs.openapi.checks")

CHECKS = [
    schemathesis.checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.unsupported_method,
    checks.ignored_auth,
]
"""What the document promises. Not among them: rejecting every request the document would
not generate (an unknown query parameter is ignored, as by most HTTP APIs)."""


AUTH = {"Authorization": f"Bearer {TOKEN}"}
UNPARSABLE = "Invalid HTTP request received."
"""uvicorn's plain-text answer to a request it cannot parse; the app never sees it."""
EXAMPLES = 30  # generated requests per operation


def test_the_api_keeps_its_document(guarded: Server) -> None:
    # schemathesis's API, not its pytest plugin (which reaches into pytest's internals): each
    # operation's strategy driven by a Hypothesis test of its own.
    schema = schemathesis.openapi.from_url(f"{guarded.url}/openapi.json", headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:
        check_operation(operation.as_strategy())


def check_operation(strategy: Any) -> None:
    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )
    def run(case: Any) -> None:
        response = case.call(headers=AUTH, timeout=10)
        if response.status_code == 400 and response.text == UNPARSABLE:
            return  # refused by uvicorn's HTTP parser (a header no client could send)
        case.validate_response(response, checks=CHECKS, headers=AUTH)

    run()
