"""``POST /os-server-external-events``: judge each event, answer 200 or 207 once recorded."""

from __future__ import annotations

import logging
import re
import uuid as uuidlib
from typing import Any

from herald.api.edge import ApiRequest, ApiResponse
from herald.api.microversion import APIVersion
from herald.api.schemas.server_external_events import TAG_MAX_LENGTH, request_schema
from herald.api.validation import SchemaValidator
from herald.domain.events import SCHEMA_VERSIONS, EventName, EventStatus, names_for_version
from herald.service.accept import AcceptRequest, IncomingEvent
from herald.service.external_events import ExternalEventsService

logger = logging.getLogger(__name__)

POLICY_RULE = "os_compute_api:os-server-external-events:create"

# NOTE: matched whole (fullmatch): a "$" would also match before a final newline.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_EVENT_KEYS = frozenset({"server_uuid", "name", "status", "tag"})
_STATUSES = {s.value: s for s in EventStatus}


class _VersionRules:
    """The schema validator and the accepted names for one microversion range."""

    def __init__(self, version: tuple[int, int]) -> None:
        self.validator = SchemaValidator(request_schema(version))
        self.names = {name: EventName(name) for name in names_for_version(version)}


class ServerExternalEventsController:
    def __init__(self, service: ExternalEventsService, *, commit_timeout: float | None = None) -> None:
        """:param commit_timeout: seconds to wait for the commit before answering 503 (None: no bound)."""
        self._service = service
        self._commit_timeout = commit_timeout
        self._rules: dict[tuple[int, int], _VersionRules] = {}  # by request version
        self._by_since: dict[tuple[int, int], _VersionRules] = {}  # by schema version

    def _rules_for(self, version: APIVersion) -> _VersionRules:
        rules = self._rules.get(version)
        if rules is None:
            since = max(v for v in SCHEMA_VERSIONS if v <= tuple(version))
            rules = self._by_since.get(since) or _VersionRules(since)
            self._by_since[since] = self._rules[version] = rules
        return rules

    async def create(self, req: ApiRequest) -> ApiResponse:
        rules = self._rules_for(req.version)
        body = await req.json()
        if req.legacy_v2:
            body = _strip_unknown(body)
        events = _fast_parse(body, rules.names)
        if events is None:
            rules.validator.validate(body)
            events = _parse(body, rules.names)
        req.authorize(POLICY_RULE)
        ctx = req.context
        request = AcceptRequest(req.request_id, ctx.user_id, ctx.project_id, events)
        result = await self._service.accept(request, commit_wait=self._commit_timeout)
        reply: list[dict[str, Any]] = body["events"]  # type: ignore[index]
        all_ok = True
        for event_dict, verdict in zip(reply, result.verdicts, strict=True):
            event_dict["status"] = verdict.status.value
            event_dict["code"] = verdict.code
            all_ok = all_ok and verdict.code == 200
        return ApiResponse(200 if all_ok else 207, {"events": reply})


def _fast_parse(body: object, names: dict[str, EventName]) -> list[IncomingEvent] | None:
    """The common well-formed body, checked without jsonschema; None sends it to the full validator.

    It only accepts what the schema accepts (canonical lower-case UUIDs included), so a
    None never hides an error and a list never lets one through.
    """
    if type(body) is not dict or len(body) != 1:
        return None
    items = body.get("events")
    if type(items) is not list or not items:
        return None
    parsed: list[IncomingEvent] = []
    for item in items:
        if type(item) is not dict or not _EVENT_KEYS.issuperset(item):
            return None
        raw_name, raw_status = item.get("name"), item.get("status", "completed")
        if type(raw_name) is not str or type(raw_status) is not str:
            return None
        name = names.get(raw_name)
        server_uuid = item.get("server_uuid")
        if name is None or type(server_uuid) is not str or not _CANONICAL_UUID.fullmatch(server_uuid):
            return None
        status = _STATUSES.get(raw_status)
        tag = item.get("tag")
        if status is None or (tag is not None and (type(tag) is not str or len(tag) > TAG_MAX_LENGTH or "\x00" in tag)):
            return None
        if "tag" in item and tag is None:
            return None
        parsed.append(IncomingEvent(name, server_uuid, tag, status))
    return parsed


def _parse(body: Any, names: dict[str, EventName]) -> list[IncomingEvent]:
    """Turn a schema-valid body into events; UUIDs are canonicalised for the lookup only."""
    return [
        IncomingEvent(
            names[item["name"]],
            str(uuidlib.UUID(item["server_uuid"])),
            item.get("tag"),
            _STATUSES[item.get("status", "completed")],
        )
        for item in body["events"]
    ]


def _strip_unknown(body: object) -> object:
    """Legacy /v2 requests: unknown properties are dropped, not rejected (as Nova does)."""
    if not isinstance(body, dict):
        return body
    stripped = {k: v for k, v in body.items() if k == "events"}
    items = stripped.get("events")
    if isinstance(items, list):
        stripped["events"] = [
            {k: v for k, v in item.items() if k in _EVENT_KEYS} if isinstance(item, dict) else item for item in items
        ]
    return stripped
