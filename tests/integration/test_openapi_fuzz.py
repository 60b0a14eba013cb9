"""Schema-driven fuzzing (schemathesis) of every operation in the OpenAPI document against a live
server on loopback: valid (positive) and invalid (negative) requests generated from the schema;
not one 5xx, and every status is one the schema documents for its operation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import status_code_conformance

from service.settings import Settings
from tests.integration.serving import serve_in_thread

SettingsFactory = Callable[..., Settings]
EXAMPLES = 25  # per operation and mode: 17 operations x 2 modes, ~700 requests in ~20 s here


def _fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, url: str, calls: Counter[str]) -> None:
    @given(case=operation.as_strategy(mode))
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, timeout=30)
        calls[mode.value] += 1
        case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

    try:
        fuzz()
    except Unsatisfiable:  # nothing to make invalid (no parameters, no body): positive mode covers it
        assert mode is GenerationMode.NEGATIVE, operation.label


def test_schema_fuzz_finds_no_server_error(make_settings: SettingsFactory) -> None:
    settings = make_settings(max_body_bytes=1 << 20, request_timeout_s=10.0)
    with serve_in_thread(settings) as both:
        schema = schemathesis.openapi.from_url(f"{both.rest_url}/openapi.json")
        results = list(schema.get_all_operations())
        operations = [r.ok() for r in results if isinstance(r, Ok)]
        assert len(operations) == len(results), results  # the document itself is valid
        assert len(operations) >= 15
        calls: Counter[str] = Counter()
        for operation in operations:
            for mode in GenerationMode:
                _fuzz(operation, mode, both.rest_url, calls)
        assert calls["positive"] >= 5 * len(operations) and calls["negative"] >= 5 * len(operations), calls
        statuses = {
            s.labels["status"]
            for m in both.core.metrics.registry.collect()
            for s in m.samples
            if s.name == "mcga_http_requests_total" and s.value
        }
        assert statuses and not any(code.startswith("5") for code in statuses), statuses
