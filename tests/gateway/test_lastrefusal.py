"""What the gateway keeps of a refused post for the guard: no text, no offsets."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from proxy.gateway.lastrefusal import summary

AT = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
DRAFT = "Call +371 29 123 456 now"


def test_keeps_the_explanation_and_drops_the_text() -> None:
    body = json.dumps({"error": "refused", "verdict": "block", "message": "Sargs refused it",
                       "text": DRAFT, "findings": [
                           {"rule": "personal-data", "severity": "block", "start": 5, "end": 20,
                            "message": "A phone number", "guideline": "GDPR",
                            "ways": ["review"], "quote": DRAFT[5:20]}]}).encode()
    kept = summary(403, "post-findings", body, AT)
    shown = kept.as_json()
    assert shown["findings"] == [{"rule": "personal-data", "severity": "block",
                                  "message": "A phone number", "guideline": "GDPR",
                                  "ways": ["review"]}]
    assert shown["message"] == "Sargs refused it"
    assert "+371" not in json.dumps(shown)
    assert 0 <= shown["age"] < 5


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'{"findings": [1, {"x": 1}]}',
                                  b'{"message": 5, "findings": "no"}'])
def test_an_answer_it_cannot_read_is_still_a_refusal(body: bytes) -> None:
    kept = summary(413, "post-too-large", body, AT)
    assert kept.findings == ()
    assert kept.message == ""
    assert kept.reason == "post-too-large"
