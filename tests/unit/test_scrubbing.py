"""The Sentry before_send hook removes personal data from any event shape."""

from __future__ import annotations

from crm.platform.observability import FILTERED, scrub_event


def test_request_data_cookies_headers_and_user_are_removed() -> None:
    event = {
        "request": {
            "data": {"name": "Анна"},
            "cookies": {"session": "abc"},
            "headers": {"Authorization": "Bearer crm_x", "Accept": "application/json"},
        },
        "user": {"email": "anna@example.ru"},
        "exception": {"values": [{"value": "mail to anna@example.ru or call +79123456789 failed"}]},
        "breadcrumbs": {"values": [{"message": ("tuple", "ivan@example.com")}]},
    }
    scrubbed = scrub_event(event)
    assert "data" not in scrubbed["request"] and "cookies" not in scrubbed["request"]
    assert scrubbed["request"]["headers"] == {"Authorization": FILTERED, "Accept": "application/json"}
    assert "user" not in scrubbed
    assert scrubbed["exception"]["values"][0]["value"] == f"mail to {FILTERED} or call {FILTERED} failed"
    assert scrubbed["breadcrumbs"]["values"][0]["message"] == ("tuple", FILTERED)
