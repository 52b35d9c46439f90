"""python-novaclient against the in-process Herald: its requests go through the test's ASGI client.

Neutron and Cinder post their events with novaclient; a test plays them with the same calls.
novaclient is synchronous, so a test runs its calls on a worker thread (``asyncio.to_thread``)
and each HTTP request is handed back to the test's loop, where the app runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import requests
from keystoneauth1 import session
from keystoneauth1.token_endpoint import Token
from novaclient import client as nova_client

REQUEST_TIMEOUT = 30.0
BASE_URL = "http://herald.test"


class _AsgiAdapter(requests.adapters.BaseAdapter):
    """A requests transport that sends each request through ``client`` on ``loop``."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._client = client
        self._loop = loop

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        assert request.method is not None
        assert request.url is not None
        headers: Mapping[str, str] = dict(request.headers)
        body = request.body.encode() if isinstance(request.body, str) else request.body
        call = self._client.request(request.method, request.url, headers=headers, content=body)
        reply = asyncio.run_coroutine_threadsafe(call, self._loop).result(REQUEST_TIMEOUT)
        response = requests.Response()
        response.status_code = reply.status_code
        response.headers.update(reply.headers)
        response._content = reply.content
        response.url = request.url
        response.request = request
        response.reason = reply.reason_phrase
        return response

    def close(self) -> None:
        pass


def novaclient_for(client: httpx.AsyncClient, version: str, token: str = "admin:admin") -> Any:
    """A novaclient at ``version`` whose requests reach ``client``'s app (call it from a worker thread)."""
    transport = requests.Session()
    transport.mount(BASE_URL, _AsgiAdapter(client, asyncio.get_running_loop()))
    auth = Token(BASE_URL + "/v2.1", token)
    return nova_client.Client(version, session=session.Session(auth=auth, session=transport))
