"""/os-keypairs over HTTP, and servers created with a key pair's name."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.integration.api.conftest import ADMIN, ALICE, BOB, IMAGE, Compute

BASE = "http://compute.test:8774"


def _public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " me@laptop"


def _md5_fingerprint(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


async def _keypairs(
    compute: Compute, method: str, path: str = "", body: object = None, *, version: str = "2.1", headers: Any = None
) -> httpx.Response:
    return await compute.client.request(
        method,
        f"/v2.1/os-keypairs{path}",
        json=body,
        headers={**(headers or ALICE), "OpenStack-API-Version": f"compute {version}"},
    )


async def test_import_show_list_delete(compute: Compute) -> None:
    public_key = _public_key()
    created = await _keypairs(compute, "POST", body={"keypair": {"name": "laptop", "public_key": public_key}})
    assert created.status_code == 200  # 201 from 2.2
    assert created.json() == {
        "keypair": {
            "name": "laptop",
            "public_key": public_key,
            "fingerprint": _md5_fingerprint(public_key),
            "user_id": "alice",
        }
    }
    shown = (await _keypairs(compute, "GET", "/laptop", version="2.2")).json()["keypair"]
    assert shown["type"] == "ssh"
    assert (shown["deleted"], shown["deleted_at"], shown["user_id"]) == (False, None, "alice")
    assert isinstance(shown["id"], int)
    listed = (await _keypairs(compute, "GET")).json()
    assert listed == {
        "keypairs": [
            {"keypair": {"name": "laptop", "public_key": public_key, "fingerprint": _md5_fingerprint(public_key)}}
        ]
    }
    assert (await _keypairs(compute, "GET", headers=BOB)).json() == {"keypairs": []}
    assert (await _keypairs(compute, "DELETE", "/laptop", version="2.2")).status_code == 204
    missing = await _keypairs(compute, "GET", "/laptop")
    assert missing.json() == {"itemNotFound": {"code": 404, "message": "Keypair laptop not found for user alice"}}
    assert (await _keypairs(compute, "DELETE", "/laptop")).status_code == 404


async def test_generated_key_pair_returns_its_private_key_until_2_92(compute: Compute) -> None:
    created = await _keypairs(compute, "POST", body={"keypair": {"name": "made"}}, version="2.2")
    assert created.status_code == 201
    keypair = created.json()["keypair"]
    assert keypair["type"] == "ssh"
    assert keypair["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    private = serialization.load_pem_private_key(keypair["private_key"].encode(), password=None)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert keypair["public_key"].startswith(public.decode())
    assert keypair["fingerprint"] == _md5_fingerprint(keypair["public_key"])
    x509 = await _keypairs(compute, "POST", body={"keypair": {"name": "cert", "type": "x509"}}, version="2.2")
    assert x509.json()["keypair"]["public_key"].startswith("-----BEGIN CERTIFICATE-----")
    refused = await _keypairs(compute, "POST", body={"keypair": {"name": "late"}}, version="2.92")
    assert refused.status_code == 400
    assert "'public_key' is a required property" in refused.json()["badRequest"]["message"]


@pytest.mark.parametrize(
    ("version", "keypair", "status", "message"),
    [
        ("2.1", {"name": "bad/name", "public_key": "x"}, 400, "does not match"),
        ("2.1", {"name": "k", "public_key": "ssh-rsa not-base64"}, 400, "failed to generate fingerprint"),
        ("2.1", {"name": "k", "type": "ssh"}, 400, "Additional properties are not allowed"),
        ("2.2", {"name": "k", "type": "x509", "public_key": "nope"}, 400, "failed to generate X509 fingerprint"),
        ("2.1", {"name": "k", "user_id": "bob"}, 400, "Additional properties are not allowed"),
    ],
)
async def test_create_refusals(
    compute: Compute, version: str, keypair: dict[str, object], status: int, message: str
) -> None:
    response = await _keypairs(compute, "POST", body={"keypair": keypair}, version=version)
    assert response.status_code == status, response.text
    assert message in response.json()["badRequest"]["message"]


async def test_duplicate_name_is_a_conflict(compute: Compute) -> None:
    body = {"keypair": {"name": "twice", "public_key": _public_key()}}
    assert (await _keypairs(compute, "POST", body=body)).status_code == 200
    again = await _keypairs(compute, "POST", body=body)
    assert again.json() == {"conflictingRequest": {"code": 409, "message": "Key pair 'twice' already exists."}}
    # Another user may use the same name.
    assert (await _keypairs(compute, "POST", body=body, headers=BOB)).status_code == 200


async def test_admin_manages_another_users_key_pairs_from_2_10(compute: Compute) -> None:
    body = {"keypair": {"name": "for-bob", "public_key": _public_key(), "user_id": "bob"}}
    assert (await _keypairs(compute, "POST", body=body, version="2.10", headers=ADMIN)).status_code == 201
    listed = (await _keypairs(compute, "GET", headers=BOB)).json()["keypairs"]
    assert [k["keypair"]["name"] for k in listed] == ["for-bob"]
    by_admin = await _keypairs(compute, "GET", "?user_id=bob", version="2.10", headers=ADMIN)
    assert [k["keypair"]["name"] for k in by_admin.json()["keypairs"]] == ["for-bob"]
    not_allowed = await _keypairs(compute, "POST", body=body, version="2.10", headers=ALICE)
    assert not_allowed.status_code == 403
    assert (await _keypairs(compute, "GET", "?user_id=bob", version="2.10")).status_code == 403
    assert (
        await _keypairs(compute, "DELETE", "/for-bob?user_id=bob", version="2.10", headers=ADMIN)
    ).status_code == 204


async def test_listing_pages_by_name_from_2_35(compute: Compute) -> None:
    for name in ("c", "a", "b"):
        await _keypairs(compute, "POST", body={"keypair": {"name": name, "public_key": _public_key()}})
    page = (await _keypairs(compute, "GET", "?limit=2", version="2.35")).json()
    assert [k["keypair"]["name"] for k in page["keypairs"]] == ["a", "b"]
    assert page["keypairs_links"] == [{"rel": "next", "href": f"{BASE}/v2.1/os-keypairs?limit=2&marker=b"}]
    rest = (await _keypairs(compute, "GET", "?limit=2&marker=b", version="2.35")).json()
    assert [k["keypair"]["name"] for k in rest["keypairs"]] == ["c"]
    bad = await _keypairs(compute, "GET", "?marker=zzz", version="2.35")
    assert bad.json() == {"badRequest": {"code": 400, "message": "marker [zzz] not found"}}


async def test_quota_of_100_key_pairs(compute: Compute) -> None:
    key = _public_key()
    for i in range(100):
        response = await _keypairs(compute, "POST", body={"keypair": {"name": f"k{i}", "public_key": key}})
        assert response.status_code == 200
    over = await _keypairs(compute, "POST", body={"keypair": {"name": "k100", "public_key": key}})
    assert over.json() == {"forbidden": {"code": 403, "message": "Quota exceeded, too many key pairs."}}


async def test_server_created_with_a_key_pair_shows_it(compute: Compute) -> None:
    await _keypairs(compute, "POST", body={"keypair": {"name": "laptop", "public_key": _public_key()}})
    uuid = await compute.create(key_name="laptop")
    compute.activate(uuid)
    assert (await compute.get(f"/v2.1/servers/{uuid}")).json()["server"]["key_name"] == "laptop"
    # Bob has no key pair of that name: Nova looks only at the caller's own.
    body = {"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "key_name": "laptop"}}
    refused = await compute.client.post("/v2.1/servers", json=body, headers=BOB)
    assert refused.json() == {"badRequest": {"code": 400, "message": "Invalid key_name provided."}}
