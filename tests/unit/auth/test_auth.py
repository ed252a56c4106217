"""The pure security policies: grants, API keys, origins, rate limits and tokens."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from broadcast_cli.auth import ApiKeys, Grant, OriginPolicy, TokenBucket, TokenSigner, TokenVerifier
from broadcast_cli.exceptions import AuthenticationError, ConfigurationError, TokenExpired

SECRET = "s" * 40


class TestGrant:
    def test_names_and_patterns(self) -> None:
        grant = Grant.of(["orders", "users.*"])
        assert grant.allows("orders")
        assert grant.allows("users.42") and grant.allows("users.eu.7")
        assert not grant.allows("users") and not grant.allows("orders.eu") and not grant.allows("payments")

    @pytest.mark.parametrize(
        ("granted", "pattern", "allowed"),
        [
            ("users.*", "users.*", True),
            ("users.*", "users.eu.*", True),
            ("*", "anything.*", True),
            ("users.*", "*", False),
            ("users.*", "user*", False),
            ("a*b", "a*", False),
            ("orders", "orders*", False),
        ],
    )
    def test_a_pattern_needs_a_granted_pattern_that_covers_it(self, granted: str, pattern: str, allowed: bool) -> None:
        assert Grant.of([granted]).allows(pattern) is allowed

    def test_invalid_entries_are_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="cannot grant 'a b'"):
            Grant.of(["a b"])

    def test_empty_grants_nothing(self) -> None:
        assert not Grant() and not Grant().allows("orders")


class TestApiKeys:
    def test_the_right_key_passes_and_others_fail(self) -> None:
        keys = ApiKeys.of(["k" * 20, "m" * 20])
        keys.check("Bearer " + "m" * 20)
        keys.check("bearer " + "k" * 20)
        for header in (None, "", "Basic " + "k" * 20, "Bearer", "Bearer " + "k" * 19, "Bearer " + "x" * 20):
            with pytest.raises(AuthenticationError):
                keys.check(header)

    def test_short_keys_are_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="at least 16"):
            ApiKeys.of(["short"])


class TestOrigins:
    def test_exact_and_wildcard_origins(self) -> None:
        policy = OriginPolicy.of(["https://app.example.com", "https://*.example.org", "http://localhost:8000"])
        assert policy.allows("https://app.example.com") and policy.allows("HTTPS://APP.EXAMPLE.COM")
        assert policy.allows("https://a.b.example.org") and policy.allows("http://localhost:8000")
        for origin in ("https://evil.com", "https://app.example.com.evil.com", "http://app.example.com",
                       "https://example.org", "http://localhost:8001", "null"):
            assert not policy.allows(origin), origin

    def test_no_origin_header_and_an_empty_policy_are_allowed(self) -> None:
        assert OriginPolicy.of(["https://app.example.com"]).allows(None)
        assert OriginPolicy().allows("https://anything.example")

    def test_invalid_origins_are_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="invalid allowed origin"):
            OriginPolicy.of(["app.example.com"])

    def test_a_lone_star_allows_every_origin_but_stays_a_configured_policy(self) -> None:
        policy = OriginPolicy.of(["*"])
        assert policy  # configured, unlike the empty policy
        for origin in ("https://evil.com", "http://localhost:1", "null"):
            assert policy.allows(origin), origin

    def test_a_lone_star_mixed_with_exact_origins_still_allows_everything(self) -> None:
        policy = OriginPolicy.of(["https://app.example.com", "*"])
        assert policy.allows("https://app.example.com") and policy.allows("https://other.example")

    def test_more_than_one_wildcard_in_an_origin_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match=r"invalid allowed origin 'https://\*\.\*\.example\.com'"):
            OriginPolicy.of(["https://*.*.example.com"])


class TestTokenBucket:
    def test_burst_then_rate(self) -> None:
        now = [0.0]
        bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
        assert [bucket.take() for _ in range(4)] == [True, True, True, False]
        now[0] = 0.5  # one more token
        assert [bucket.take(), bucket.take()] == [True, False]
        now[0] = 100.0  # never more than the burst
        assert sum(bucket.take() for _ in range(10)) == 3

    def test_bad_settings(self) -> None:
        with pytest.raises(ConfigurationError):
            TokenBucket(rate=0, burst=1)


def key_pair(algorithm: str) -> tuple[bytes, bytes]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048) if algorithm == "RS256" else (
        ec.generate_private_key(ec.SECP256R1())
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


class TestTokens:
    def test_minted_tokens_verify_with_their_claims(self) -> None:
        token = TokenSigner(SECRET).mint("alice", channels=["orders", "users.*"], publish=["chat.*"], ttl=3600)
        claims = TokenVerifier(SECRET).verify(token)
        assert claims.sub == "alice"
        assert claims.channels.allows("users.7") and not claims.channels.allows("payments")
        assert claims.publish.allows("chat.room") and not claims.publish.allows("orders")
        assert 3590 < claims.seconds_left() <= 3600

    @pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
    def test_key_pairs(self, algorithm: str) -> None:
        private, public = key_pair(algorithm)
        token = TokenSigner(private, algorithm).mint("bob", channels=["orders"])
        assert TokenVerifier(public, algorithm).verify(token).sub == "bob"
        other_private, _ = key_pair(algorithm)
        forged = TokenSigner(other_private, algorithm).mint("bob", channels=["*"])
        with pytest.raises(AuthenticationError, match="signature"):
            TokenVerifier(public, algorithm).verify(forged)

    def test_expired_forged_and_malformed_tokens_are_refused(self) -> None:
        verifier = TokenVerifier(SECRET, leeway=0)
        expired = jwt.encode({"sub": "a", "exp": int(time.time()) - 10, "channels": []}, SECRET, algorithm="HS256")
        with pytest.raises(TokenExpired):
            verifier.verify(expired)
        forged = TokenSigner("x" * 40).mint("a", channels=["*"])
        with pytest.raises(AuthenticationError, match="signature"):
            verifier.verify(forged)
        none_alg = jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, None, algorithm="none")
        for bad in ("", "not.a.token", none_alg):
            with pytest.raises(AuthenticationError):
                verifier.verify(bad)
        no_exp = jwt.encode({"sub": "a", "channels": []}, SECRET, algorithm="HS256")
        with pytest.raises(AuthenticationError, match="exp"):
            verifier.verify(no_exp)
        bad_channels = jwt.encode({"sub": "a", "exp": int(time.time()) + 60, "channels": "orders"}, SECRET)
        with pytest.raises(AuthenticationError, match="channels"):
            verifier.verify(bad_channels)

    def test_the_error_never_contains_the_token(self) -> None:
        token = TokenSigner("x" * 40).mint("a", channels=["*"])
        with pytest.raises(AuthenticationError) as caught:
            TokenVerifier(SECRET).verify(token)
        assert token not in str(caught.value)

    def test_weak_secrets_and_unknown_algorithms_are_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="at least 32"):
            TokenSigner("short")
        with pytest.raises(ConfigurationError, match="unknown token algorithm"):
            TokenVerifier(SECRET, "HS512")
        with pytest.raises(ConfigurationError, match="invalid"):
            TokenSigner(SECRET).mint("a", channels=["not valid"])

    def test_a_token_needs_a_subject_and_a_positive_lifetime(self) -> None:
        signer = TokenSigner(SECRET)
        with pytest.raises(ConfigurationError, match=r"a token needs a subject \(--sub\)"):
            signer.mint("", channels=["orders"])
        for ttl in (0, -5.0):
            with pytest.raises(ConfigurationError, match=f"must be more than 0 seconds, not {ttl}"):
                signer.mint("alice", channels=["orders"], ttl=ttl)

    @pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
    def test_a_signing_key_that_is_not_a_private_key_is_a_configuration_error(self, algorithm: str) -> None:
        with pytest.raises(ConfigurationError, match=f"cannot sign a token with this {algorithm} key: "):
            TokenSigner(SECRET, algorithm).mint("alice", channels=["orders"])

    def test_a_signing_key_of_the_other_kind_is_a_configuration_error(self) -> None:
        rsa_private, _ = key_pair("RS256")
        with pytest.raises(ConfigurationError, match="cannot sign a token with this ES256 key"):
            TokenSigner(rsa_private, "ES256").mint("alice")

    def test_a_verifying_key_that_cannot_be_loaded_says_the_token_cannot_be_checked(self) -> None:
        private, _ = key_pair("ES256")
        token = TokenSigner(private, "ES256").mint("alice", channels=["orders"])
        with pytest.raises(AuthenticationError, match="the connection token cannot be checked: ") as caught:
            TokenVerifier(SECRET, "ES256").verify(token)
        assert token not in str(caught.value)

    @pytest.mark.parametrize(
        ("sub", "message"),
        [("", "the connection token's 'sub' claim must be a non-empty string"), (0, "Subject must be a string")],
    )
    def test_a_subject_that_is_not_a_non_empty_string_is_refused(self, sub: object, message: str) -> None:
        token = jwt.encode({"sub": sub, "exp": int(time.time()) + 60, "channels": []}, SECRET, algorithm="HS256")
        with pytest.raises(AuthenticationError, match=message):
            TokenVerifier(SECRET).verify(token)

    @pytest.mark.parametrize("claim", ["channels", "publish"])
    def test_a_grant_claim_with_an_invalid_channel_name_is_refused(self, claim: str) -> None:
        claims = {"sub": "a", "exp": int(time.time()) + 60, claim: ["orders", "not valid"]}
        token = jwt.encode(claims, SECRET, algorithm="HS256")
        with pytest.raises(AuthenticationError, match=f"the connection token's '{claim}' claim is not valid: "):
            TokenVerifier(SECRET).verify(token)
