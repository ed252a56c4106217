# broadcast-cli server image: `broadcast serve` on port 8000.
#   docker build -t broadcast-cli .
#   docker run -p 8000:8000 -e BROADCAST_API_KEY=... -e BROADCAST_REDIS_URL=redis://redis:6379/0 broadcast-cli
# Every option of `broadcast serve` can be set as BROADCAST_<OPTION> (see README). On 0.0.0.0 the
# server refuses to start without BROADCAST_API_KEY (or BROADCAST_INSECURE=true); see docs/security.md.
FROM python:3.11-slim AS server

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BROADCAST_HOST=0.0.0.0 \
    BROADCAST_PORT=8000

WORKDIR /app
# The dependencies exactly as locked (hash-checked), then the package with the locked build backend.
COPY requirements/runtime.txt ./requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md LICENSE ./
COPY broadcast_cli ./broadcast_cli
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && useradd --system --no-create-home broadcast
USER broadcast

EXPOSE 8000
# Readiness: 503 while Redis is unreachable (GET /health is liveness only).
HEALTHCHECK --interval=5s --timeout=3s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2)"]
# SIGTERM drains: publishes in flight finish, clients get what is queued, then close 1012.
STOPSIGNAL SIGTERM
CMD ["broadcast", "serve"]

# The load generator and correctness check, for the compose test runner.
FROM server AS bench
CMD ["broadcast", "bench", "--help"]
