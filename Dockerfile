# syntax=docker/dockerfile:1
#
# continual: REST API + dashboard in one process.
#
#   docker build -t continual .
#   docker run -p 8000:8000 -v continual-data:/data --env-file .env continual
#
# Two stages: `builder` resolves the locked environment with uv; the runtime
# stage gets only the virtual environment (no uv, no source tree, no build tools)
# and runs it as an unprivileged user. Both stages use the same base image so the
# venv's interpreter symlink (/usr/local/bin/python3.11) resolves in the runtime.

# ---------------------------------------------------------------- builder ----
FROM python:3.11-slim AS builder

# uv is copied from the official distroless image, pinned to a release tag.
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /bin/

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# 1) Dependencies only: this layer is rebuilt only when the lock changes.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --locked --no-dev --no-install-project --no-editable

# 2) The project itself. --no-editable installs it into site-packages, so the
#    runtime needs the venv alone and not /app/src.
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable

# ---------------------------------------------------------------- runtime ----
FROM python:3.11-slim AS runtime

LABEL org.opencontainers.image.title="continual" \
      org.opencontainers.image.description="Keeps a tabular classification model accurate while its data changes." \
      org.opencontainers.image.licenses="MIT"

# The server reads CONTINUAL_HOST / CONTINUAL_PORT, so the port lives in one
# place and the HEALTHCHECK below reads the same variable.
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CONTINUAL_HOST=0.0.0.0 \
    CONTINUAL_PORT=8000 \
    CONTINUAL_DATA_DIR=/data \
    NICEGUI_STORAGE_PATH=/data/.nicegui \
    NUMBA_CACHE_DIR=/data/.numba \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true

# Unprivileged user with a real home (matplotlib/mlflow caches) and the data
# directory owned by it. /data is chowned *before* VOLUME so a fresh named
# volume inherits that ownership.
RUN groupadd --system --gid 10001 continual \
    && useradd --system --no-log-init --uid 10001 --gid continual \
       --create-home --home-dir /home/continual --shell /usr/sbin/nologin continual \
    && mkdir -p /data \
    && chown continual:continual /data

# The venv stays root-owned: the app user can run it but not modify it.
COPY --from=builder /app/.venv /app/.venv

WORKDIR /app
# Numeric so runtimes (e.g. Kubernetes runAsNonRoot) can verify it is not root.
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

# No curl in the image: a stdlib one-liner. Proxies are bypassed on purpose.
# Exit 0 on HTTP 200, 1 on anything else (an uncaught exception exits 1 too).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; r = u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/health' % os.environ.get('CONTINUAL_PORT', '8000'), timeout=4); sys.exit(0 if r.status == 200 else 1)"]

# Exec form, no shell: the server is PID 1 and receives SIGTERM from `docker stop`.
ENTRYPOINT ["continual"]
CMD ["serve"]
