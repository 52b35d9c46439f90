"""Key material for key pairs: fingerprints of imported keys and new key pairs, as Nova makes them."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from herald.api.faults import ApiFault

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

# NOTE: cryptography (several MB per API worker) is imported by the functions that use it: only
# key pair requests need it.

SSH = "ssh"
X509 = "x509"
_BITS = 2048


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    public_key: str
    fingerprint: str
    private_key: str | None = None  # only for a key pair made here


def _colons(hex_digest: str) -> str:
    return ":".join(hex_digest[i : i + 2] for i in range(0, len(hex_digest), 2))


def fingerprint(public_key: str, key_type: str) -> str:
    """An imported key's fingerprint (MD5 of an OpenSSH key's blob, SHA-1 of an X.509 certificate).

    :raises ApiFault: 400 with Nova's message when the key cannot be read.
    """
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization

    if key_type == X509:
        try:
            cert = x509.load_pem_x509_certificate(public_key.encode("utf-8"))
        except (ValueError, TypeError) as exc:
            raise ApiFault(
                400, f"Keypair data is invalid: failed to generate X509 fingerprint. Error message: {exc}"
            ) from None
        return _colons(cert.fingerprint(hashes.SHA1()).hex())
    try:
        serialization.load_ssh_public_key(public_key.encode("utf-8"))
        blob = base64.b64decode(public_key.split(" ")[1])
    except (ValueError, TypeError, IndexError, binascii.Error, UnsupportedAlgorithm):
        raise ApiFault(400, "Keypair data is invalid: failed to generate fingerprint") from None
    return _colons(hashlib.md5(blob, usedforsecurity=False).hexdigest())


def generate(key_type: str, user_id: str) -> KeyMaterial:
    """A new key pair: an OpenSSH RSA key, or a self-signed client certificate for ``x509``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=_BITS)
    if key_type == X509:
        return _certificate(key, user_id)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode("ascii")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    public_key = f"{public.decode('ascii')} Generated-by-Herald"
    return KeyMaterial(public_key, fingerprint(public_key, SSH), private)


def _certificate(key: rsa.RSAPrivateKey, user_id: str) -> KeyMaterial:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return KeyMaterial(pem, fingerprint(pem, X509), private)
