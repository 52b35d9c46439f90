from __future__ import annotations

import pytest

from herald.api.faults import ApiFault
from herald.api.microversion import (
    MAX_VERSION,
    MIN_VERSION,
    APIVersion,
    UnsupportedVersion,
    negotiate,
    requested_version,
)


def h(*pairs: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode(), v.encode()) for k, v in pairs]


def test_range_is_nova_34() -> None:
    assert (APIVersion(2, 1), APIVersion(2, 104)) == (MIN_VERSION, MAX_VERSION)


def test_versions_order_numerically_and_compare_with_tuples() -> None:
    assert APIVersion(2, 9) < APIVersion(2, 10) < APIVersion(2, 100)
    assert APIVersion(2, 76) >= (2, 76)
    assert str(APIVersion(2, 93)) == "2.93"


@pytest.mark.parametrize(("text", "expected"), [("2.1", (2, 1)), ("2.104", (2, 104)), ("10.0", (10, 0))])
def test_parse(text: str, expected: tuple[int, int]) -> None:
    assert APIVersion.parse(text) == expected


@pytest.mark.parametrize("text", ["2.01", "02.1", "3", "LATEST", "", "2.", ".1", "2.1.1", "v2.1", "2,1", " 2.1"])
def test_parse_rejects_bad_format_with_novas_message(text: str) -> None:
    with pytest.raises(ApiFault) as info:
        APIVersion.parse(text)
    assert info.value.status == 400
    assert info.value.message == (
        f"API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum."
    )
    assert info.value.headers == []


def test_no_header_means_2_1() -> None:
    assert negotiate(h(("Accept", "application/json"))) == (2, 1)


def test_standard_header() -> None:
    assert negotiate(h(("OpenStack-API-Version", "compute 2.76"))) == (2, 76)


def test_standard_header_wins_over_legacy() -> None:
    headers = h(("X-OpenStack-Nova-API-Version", "2.51"), ("OpenStack-API-Version", "compute 2.82"))
    assert negotiate(headers) == (2, 82)


def test_last_compute_entry_of_a_list_wins_and_service_is_case_insensitive() -> None:
    headers = h(("OpenStack-API-Version", "compute 2.51, placement 1.30, COMPUTE 2.60, identity 3.0"))
    assert negotiate(headers) == (2, 60)


def test_repeated_standard_headers_fold_like_a_list() -> None:
    headers = h(("OpenStack-API-Version", "compute 2.51"), ("OpenStack-API-Version", "compute 2.53"))
    assert negotiate(headers) == (2, 53)


def test_standard_header_without_compute_falls_back_to_legacy() -> None:
    headers = h(("OpenStack-API-Version", "placement 1.30"), ("X-OpenStack-Nova-API-Version", "2.40"))
    assert negotiate(headers) == (2, 40)
    assert negotiate(h(("OpenStack-API-Version", "placement 1.30"))) == (2, 1)


def test_legacy_header_last_value_wins() -> None:
    headers = h(("X-OpenStack-Nova-API-Version", "2.10"), ("X-OpenStack-Nova-API-Version", "2.20"))
    assert negotiate(headers) == (2, 20)
    assert negotiate(h(("X-OpenStack-Nova-API-Version", "2.10, 2.30"))) == (2, 30)


def test_latest_is_the_maximum_but_only_in_lower_case() -> None:
    assert negotiate(h(("OpenStack-API-Version", "compute latest"))) == MAX_VERSION
    assert negotiate(h(("X-OpenStack-Nova-API-Version", "latest"))) == MAX_VERSION
    with pytest.raises(ApiFault) as info:
        negotiate(h(("OpenStack-API-Version", "compute Latest")))
    assert info.value.status == 400


@pytest.mark.parametrize("text", ["2.0", "2.105", "3.0", "1.1"])
def test_out_of_range_is_406_echoing_the_requested_version(text: str) -> None:
    with pytest.raises(UnsupportedVersion) as info:
        negotiate(h(("OpenStack-API-Version", f"compute {text}")))
    fault = info.value
    assert fault.status == 406
    assert fault.message == f"Version {text} is not supported by the API. Minimum is 2.1 and maximum is 2.104."
    assert (b"openstack-api-version", f"compute {text}".encode()) in fault.headers
    assert (b"x-openstack-nova-api-version", text.encode()) in fault.headers
    assert fault.body() == (
        b'{"computeFault":{"code":406,"message":"Version ' + text.encode() + b" is not supported by the API. "
        b'Minimum is 2.1 and maximum is 2.104."}}'
    )


def test_requested_version_is_raw() -> None:
    assert requested_version(h(("OpenStack-API-Version", "compute  2.5 "))) == "2.5"
    assert requested_version(h(("OpenStack-API-Version", "compute"))) is None
    assert requested_version([]) is None


@pytest.mark.parametrize("text", ["2." + "9" * 5000, "9" * 5000 + ".1", "1234567890.1", "2.1234567890"])
def test_a_version_with_a_huge_number_is_406_not_a_crash(text: str) -> None:
    for header in (("OpenStack-API-Version", f"compute {text}"), ("X-OpenStack-Nova-API-Version", text)):
        with pytest.raises(UnsupportedVersion) as info:
            negotiate(h(header))
        assert info.value.status == 406
        assert info.value.message.startswith(f"Version {text} is not supported by the API.")


@pytest.mark.parametrize("text", ["2.1\n", "\u0662.1", "2.\u0661"])
def test_a_version_is_ascii_digits_only(text: str) -> None:
    with pytest.raises(ApiFault) as info:
        APIVersion.parse(text)
    assert info.value.status == 400
