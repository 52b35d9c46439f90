"""oslo.policy's ``http:`` rule checks still work when loaded on first use (herald.api.policy_checks)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from oslo_config import cfg

from herald.api.context import RequestContext
from herald.api.faults import ApiFault
from herald.api.policy import PolicyEnforcer

EVENTS = "os_compute_api:os-server-external-events:create"


class _Answers(BaseHTTPRequestHandler):
    answer = b"True"
    posted: list[bytes] = []

    def do_POST(self) -> None:
        self.posted.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def policy_server() -> Iterator[tuple[str, type[_Answers]]]:
    handler = type("Answers", (_Answers,), {"posted": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/check", handler
    server.shutdown()
    server.server_close()


def _enforcer(tmp_path: Path, rule: str) -> PolicyEnforcer:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(f'"{EVENTS}": "{rule}"\n')
    conf = cfg.ConfigOpts()
    conf([], project="herald", default_config_files=[], default_config_dirs=[])
    return PolicyEnforcer(conf, policy_file=str(policy_file))


def _caller() -> RequestContext:
    return RequestContext(
        request_id="req-x",
        user_id="u1",
        project_id="p1",
        roles=frozenset({"member"}),
        is_admin=False,
        system_scope=None,
    )


def test_an_http_rule_asks_its_server_and_allows_on_true(
    tmp_path: Path, policy_server: tuple[str, type[_Answers]]
) -> None:
    url, handler = policy_server
    handler.answer = b"True"
    _enforcer(tmp_path, url).authorize(_caller(), EVENTS)
    assert len(handler.posted) == 1
    assert b"credentials" in handler.posted[0]


def test_an_http_rule_refuses_when_its_server_says_no(
    tmp_path: Path, policy_server: tuple[str, type[_Answers]]
) -> None:
    url, handler = policy_server
    handler.answer = b"False"
    with pytest.raises(ApiFault) as refused:
        _enforcer(tmp_path, url).authorize(_caller(), EVENTS)
    assert refused.value.status == 403
    assert len(handler.posted) == 1
