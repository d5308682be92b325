"""The OpenAPI document at /openapi.json: it describes every route, and schemathesis, fuzzing the
real app (both stacks; no worker, so accepted jobs stay queued) against it, finds no 500 and no
answer the document does not describe: status, content type, headers and body schema.

Generated requests are valid (positive) and invalid (negative; those must be refused with a
4xx). Examples are derandomised and bounded, so the run is reproducible and short; raise
FUZZ_EXAMPLES locally for a deeper search.
"""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from shared.apikeys import hash_key

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.specs.openapi import checks as conformance  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
KEY = "stt_openapi-fuzz-key-0123456789abcdef0123456"


def no_internal_error(_ctx, response, _case) -> None:
    """5xx answers the document names on purpose (503 not ready, 504 legacy timeout) are fine;
    a 500 never is."""
    if response.status_code == 500:
        raise AssertionError(f"500 internal error: {response.text[:300]}")


CHECKS = [
    no_internal_error,
    conformance.status_code_conformance,
    conformance.content_type_conformance,
    conformance.response_headers_conformance,
    conformance.response_schema_conformance,
    conformance.negative_data_rejection,
]


def _app(stack, **overrides):
    from api.app import create_app

    # No worker runs: the legacy route answers its documented 504 at once instead of waiting.
    return create_app(stack.settings.model_copy(update={"legacy_wait_s": 0.0, **overrides}))


def fuzz(app, examples: int, headers: dict[str, str] | None = None) -> tuple[int, int, list[str]]:
    """Run every operation in both modes; returns (operations, cases, failure reports)."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations, cases, failures = 0, [0], []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def run(case) -> None:
                cases[0] += 1
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                pass  # nothing in this operation can be made invalid (negative mode)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported below
                failures.append(f"{operation.label} [{mode.value}]: {exc}"[:4000])
    return operations, cases[0], failures


def test_openapi_document_describes_every_route(stack):
    app = _app(stack)
    document = app.test_client().get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    described = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    routed = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routed == described, {"undocumented": routed - described, "gone": described - routed}
    codes = document["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
    assert "unauthorized" in codes["code"]["enum"]


def test_schemathesis_finds_nothing_on_the_open_api(stack):
    operations, cases, failures = fuzz(_app(stack), FUZZ_EXAMPLES)
    print(f"\nopen API: {operations} operations, {cases} cases")
    assert operations >= 18 and cases >= operations * 5
    assert not failures, "\n\n".join(failures)


def test_schemathesis_finds_nothing_with_api_keys(stack):
    """With keys configured and a valid key sent, the same document still holds."""
    app = _app(stack, api_keys={"fuzz": hash_key(KEY)})
    operations, cases, failures = fuzz(
        app, max(5, FUZZ_EXAMPLES // 3), {"Authorization": f"Bearer {KEY}"}
    )
    assert operations >= 18 and cases >= operations * 2
    assert not failures, "\n\n".join(failures)
