"""What dispatch reads from the ASGI scope equals what Starlette's wrappers gave."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from central_api.server.requestinfo import RequestIds, query_keys, request_path

PATH_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",))


def scope(path: str, query: bytes = b"", host: bytes = b"127.0.0.1:6443") -> dict[str, object]:
    return {"type": "http", "method": "GET", "scheme": "https", "path": path,
            "query_string": query, "headers": [(b"host", host)],
            "server": ("127.0.0.1", 6443), "client": ("127.0.0.1", 5000)}


@given(st.text(PATH_CHARS).map(lambda t: "/" + t))
def test_request_path_is_starlettes_url_path(path: str) -> None:
    assert request_path(scope(path)) == Request(scope(path)).url.path


def test_request_path_escapes_what_the_url_would() -> None:
    assert request_path(scope("/api/v1/namespaces/a?b#c\\d")) == \
        "/api/v1/namespaces/a%3Fb%23c%5Cd"
    assert request_path(scope("/a\nb\tc\r")) == "/abc"


@given(st.binary(max_size=80))
def test_query_keys_are_the_query_params_names(query: bytes) -> None:
    expected = tuple(Request(scope("/", query)).query_params.keys())
    assert query_keys(query) == expected


def test_query_keys_are_decoded() -> None:
    assert query_keys(b"label%53elector=a&watch&limit=5&watch=1") == \
        ("labelSelector", "watch", "limit")


def test_request_ids_are_distinct_version_4_uuids() -> None:
    ids = RequestIds()
    seen = [ids.next() for _ in range(1000)]
    assert len(set(seen)) == 1000
    assert all(uuid.UUID(i).version == 4 for i in seen)
    assert RequestIds().next()[:24] != seen[0][:24]
