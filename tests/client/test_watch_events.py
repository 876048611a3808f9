"""How a watch stream's lines are read (the 410 a compacted history gives cannot be made
on demand against a real server: it keeps five minutes of history)."""

from __future__ import annotations

import json

import pytest

from central_api.client import Gone, ServerError
from central_api.client.transport import WatchCursor


def line(kind: str, obj: dict[str, object]) -> str:
    return json.dumps({"type": kind, "object": obj})


def test_events_and_bookmarks_move_the_cursor() -> None:
    cursor = WatchCursor("10")

    cursor.event(line("MODIFIED", {"metadata": {"name": "a", "resourceVersion": "12"}}))
    after_event = cursor.resource_version
    cursor.event(line("BOOKMARK", {"metadata": {"resourceVersion": "15"}}))

    assert (after_event, cursor.resource_version) == ("12", "15")
    assert cursor.params(30)["resourceVersion"] == "15"


def test_a_410_error_event_is_gone_and_says_to_list_again() -> None:
    cursor = WatchCursor("3")

    with pytest.raises(Gone) as caught:
        cursor.event(line("ERROR", {"kind": "Status", "code": 410, "reason": "Expired",
                                    "message": "too old resource version: 3 (90)"}))

    assert "list again" in caught.value.message and caught.value.code == 410


def test_other_error_events_raise_their_status() -> None:
    with pytest.raises(ServerError):
        WatchCursor("1").event(line("ERROR", {"kind": "Status", "code": 500,
                                              "message": "boom"}))
