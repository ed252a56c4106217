"""``broadcast serve --ssl-certfile --ssl-keyfile``: HTTPS and WSS with a real certificate."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect

from tests.conftest import scaled
from tests.integration.conftest import ServerProcess


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


async def test_serve_over_tls(tmp_path: Path, start_server: Callable[..., ServerProcess]) -> None:
    cert_file, key_file = self_signed(tmp_path)
    server = start_server("--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file))
    assert server.http_url.startswith("https://") and server.ws_url.startswith("wss://")
    context = ssl.create_default_context(cafile=str(cert_file))
    async with (
        connect(server.ws_url, ssl=context) as ws,
        httpx.AsyncClient(base_url=server.http_url, verify=context, timeout=scaled(10)) as http,
    ):
        await ws.send('{"subscribe": ["orders"], "id": 1}')
        assert orjson.loads(await ws.recv())["type"] == "ack"
        (await http.post("/publish", json={"channel": "orders", "event": "e", "payload": 1})).raise_for_status()
        assert orjson.loads(await ws.recv())["payload"] == 1
    # Without the certificate, a client refuses to talk to it.
    untrusted = ssl.create_default_context()
    async with httpx.AsyncClient(verify=untrusted, timeout=scaled(10)) as http:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await http.get(f"{server.http_url}/health")
