"""The gateway's OpenAPI document against what it answers: schemathesis
generates requests for every operation from ``/openapi.json`` and checks each
answer (no 5xx; status, content type and body as documented)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from services.settings import Settings
from tests.support.gateway import Shop, grant, new_shop

pytestmark = pytest.mark.integration
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def shop(gw_settings: Settings) -> Shop:
    shop = new_shop(gw_settings)
    grant(gw_settings, "payer-1", shop)  # some generated requests are accepted
    return shop


def test_every_answer_is_as_documented(api: httpx.Client, shop: Shop) -> None:
    schema = schemathesis.openapi.from_url(f"{api.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 5, [o.label for o in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answered_as_documented(case: schemathesis.Case[Any]) -> None:
            headers = shop.headers if case.operation.path.startswith("/v1/") else {}
            try:
                case.call_and_validate(headers=headers, checks=CHECKS)
            except FailureGroup as failures:
                pytest.fail(f"{case.operation.label}: {failures}")

        answered_as_documented()
