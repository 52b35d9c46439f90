from __future__ import annotations

import logging

import pytest

from herald.api.errors import fault_for
from herald.api.faults import ApiFault
from herald.domain import errors


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.ServerNotFound("u1"), 404),
        (errors.FlavorNotFound("f1"), 404),
        (errors.HostNotFound("h1"), 404),
        (errors.ImageRefInvalid("bad image"), 400),
        (errors.Invalid(), 400),
        (errors.InvalidServerState("u1", "vm_state", "active", "start"), 409),
        (errors.UnexpectedTaskState("u1", None, "deleting"), 409),
        (errors.NoValidHost(), 400),
        (errors.Forbidden(), 403),
        (errors.NotSupportedByDriver(), 400),
    ],
)
def test_domain_errors_map_to_status_with_their_text(exc: errors.HeraldError, status: int) -> None:
    fault = fault_for(exc)
    assert (fault.status, fault.message) == (status, exc.text)


def test_api_fault_passes_through() -> None:
    fault = ApiFault(409, "x")
    assert fault_for(fault) is fault


@pytest.mark.parametrize("exc", [RuntimeError("db password is hunter2"), errors.EventWaitTimeout(), KeyError("k")])
def test_anything_else_is_a_logged_500_naming_only_the_class(exc: Exception, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="herald.api.errors"):
        fault = fault_for(exc)
    assert fault.status == 500
    assert fault.message.startswith("Unexpected API Error.")
    assert fault.message.endswith(f"\n{type(exc)}")
    assert "hunter2" not in fault.message
    assert "launchpad" not in fault.message
    assert caplog.records[-1].exc_info is not None
    assert caplog.records[-1].exc_info[1] is exc
