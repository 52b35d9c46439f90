from __future__ import annotations

import uuid

from herald.api.edge import new_request_id


def test_request_ids_are_req_uuid4() -> None:
    ids = {new_request_id() for _ in range(2000)}
    assert len(ids) == 2000
    for rid in ids:
        assert rid.startswith("req-")
        parsed = uuid.UUID(rid[4:])
        assert str(parsed) == rid[4:]
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
