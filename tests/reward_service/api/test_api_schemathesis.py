"""API fuzzing from /openapi.json with schemathesis: no 5xx and no schema violation on any route.

Runs against a real `reward-service serve` on 127.0.0.1, with bounded, deterministic examples so it
can run in CI: valid inputs (positive mode) and schema-breaking ones (negative mode) for every
operation. The checks are the response-side ones: status codes, content types, headers and bodies
must be what the document says.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from service_fixtures import real_server

from reward_service.api.app import create_app
from reward_service.service.settings import Settings

pytestmark = pytest.mark.slow

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 40


@pytest.fixture(scope="module")
def base_url():
    # Small item limit: fuzzed arrays reach it, so the 413 path is exercised too.
    with real_server("--max-items", "20", "--max-queued-items", "1000", "--api-key", "fuzz-key") as (client, _):
        yield str(client.base_url)


# The document the service serves (with a key, so auth is declared), built in process (no workers start):
# what clients are generated from.
schema = schemathesis.openapi.from_dict(create_app(Settings(workers=1, api_keys="fuzz-key")).openapi())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                max_examples=MAX_EXAMPLES, deterministic=True,
                                with_security_parameters=False)  # the tests choose the Authorization header


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_no_schema_violation(case, base_url):
    case.call_and_validate(base_url=base_url, checks=CHECKS, headers={"Authorization": "Bearer fuzz-key"})


@schema.parametrize()
@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_without_a_key_every_protected_route_is_401(case, base_url):
    response = case.call_and_validate(base_url=base_url, checks=CHECKS)
    protected = case.path.startswith("/v1/") or case.path == "/get_reward"
    if protected and case.method.upper() == case.operation.method.upper():  # negative cases may change the method
        assert response.status_code == 401


def test_the_served_document_is_the_fuzzed_one(base_url):
    import httpx

    assert httpx.get(f"{base_url}/openapi.json").json() == create_app(Settings(workers=1, api_keys="fuzz-key")).openapi()


def test_settings_default_item_limit_is_documented():
    assert Settings().max_items == 4096


def test_fuzzing_reached_the_scoring_paths_and_never_a_5xx(base_url):
    """Runs after the fuzz tests (file order): the service's own counters say what the fuzzer hit."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    codes: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{base_url}/metrics").text):
        for sample in family.samples:
            if sample.name == "reward_service_requests_total":
                codes[(sample.labels["route"], sample.labels["code"])] = sample.value
    # 503 is only /readyz while the service was starting (the fixture waited on it).
    assert not [k for k in codes if k[1].startswith("5") and k != ("/readyz", "503")]
    for route in ("/v1/rewards", "/get_reward"):
        assert codes.get((route, "200"), 0) > 0, route
        assert codes.get((route, "422"), 0) > 0, route
        assert codes.get((route, "401"), 0) > 0, route
