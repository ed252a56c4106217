"""Who may publish and read what: API keys, connection tokens, grants, origins, rate limits.

Pure policy, no I/O: the server (:mod:`broadcast_cli.server`) applies these to
HTTP requests and WebSocket connections, and the CLI mints tokens with them.
"""

from __future__ import annotations

from .api_keys import ApiKeys
from .grants import Grant
from .origins import OriginPolicy
from .rate import TokenBucket
from .tokens import ALGORITHMS, TokenClaims, TokenSigner, TokenVerifier

__all__ = [
    "ALGORITHMS",
    "ApiKeys",
    "Grant",
    "OriginPolicy",
    "TokenBucket",
    "TokenClaims",
    "TokenSigner",
    "TokenVerifier",
]
