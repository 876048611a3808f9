"""The fixtures of tests/client: a real ``scs serve`` per module (sandbox backends) and an
SDK client with its admin kubeconfig."""

from tests.client.conftest import client, server

__all__ = ["client", "server"]
