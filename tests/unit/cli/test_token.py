"""``broadcast token``: mint connection tokens that the server's verifier accepts."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from broadcast_cli.auth import TokenVerifier
from broadcast_cli.cli.app import app

SECRET = "t" * 48


def test_mint_with_the_secret_from_the_environment(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        ["token", "--sub", "alice", "--channel", "orders", "--channel", "users.*", "--ttl", "30m"],
        env={"BROADCAST_TOKEN_SECRET": SECRET},
    )
    assert result.exit_code == 0, result.output
    claims = TokenVerifier(SECRET).verify(result.stdout.strip())
    assert claims.sub == "alice" and claims.channels.allows("users.9") and not claims.publish
    assert 1790 < claims.seconds_left() <= 1800
    assert SECRET not in result.output


def test_json_output_with_the_claims(runner: CliRunner) -> None:
    args = ["token", "--sub", "svc", "--channel", "*", "--publish", "chat.*", "--secret", SECRET, "--format", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.stdout)
    assert (data["sub"], data["channels"], data["publish"], data["algorithm"]) == ("svc", ["*"], ["chat.*"], "HS256")
    assert abs(data["exp"] - (time.time() + 3600)) < 60
    assert TokenVerifier(SECRET).verify(data["token"]).publish.allows("chat.room")


def test_es256_with_a_private_key_file(runner: CliRunner, tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "key.pem"
    pem = serialization.Encoding.PEM
    key_file.write_bytes(private.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    public = private.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo)
    args = ["token", "--sub", "bob", "--channel", "orders", "--algorithm", "ES256", "--private-key", str(key_file)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert TokenVerifier(public, "ES256").verify(result.stdout.strip()).sub == "bob"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sub", "a", "--channel", "x"], "HS256 needs --secret"),
        (["--sub", "a", "--secret", SECRET], "would grant nothing"),
        (["--sub", "a", "--channel", "x", "--secret", "short"], "at least 32"),
        (["--sub", "a", "--channel", "not valid", "--secret", SECRET], "invalid"),
        (["--sub", "a", "--channel", "x", "--secret", SECRET, "--ttl", "soon"], "is not a duration"),
        (["--sub", "a", "--channel", "x", "--algorithm", "RS256"], "needs --private-key"),
    ],
)
def test_bad_input_is_a_usage_error(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["token", *args], env={"BROADCAST_TOKEN_SECRET": None})
    assert result.exit_code == 2
    assert message in result.stderr
