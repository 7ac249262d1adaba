# carehub production image: one image for the hub (default CMD), `carehub smtpd`, `carehub worker` and
# `carehub migrate`.
# Both stages use the same base tag so the venv's python symlinks resolve to the same interpreter.

FROM python:3.11-slim-bookworm AS builder

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install --no-cache-dir uv==0.13.8

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when the lock changes, not on every source edit.
# README.md is there because pyproject.toml names it as the package readme and hatchling reads it.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-editable --no-install-project

COPY carehub ./carehub
COPY channels ./channels
COPY workers ./workers
COPY templates ./templates
# --no-editable installs the project as a wheel into the venv, so the final stage needs no source tree.
RUN uv sync --frozen --no-dev --no-editable


FROM python:3.11-slim-bookworm

RUN groupadd --system --gid 10001 carehub \
    && useradd --system --no-log-init --uid 10001 --gid carehub \
        --home-dir /app --no-create-home --shell /usr/sbin/nologin carehub \
    && mkdir /data && chown 10001:10001 /data

WORKDIR /app

# Owned by root and read-only to the service user: the running process cannot change its own code.
COPY --from=builder /app/.venv /app/.venv
COPY --from=builder /app/templates /app/templates

ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CAREHUB_ENV=production \
    CAREHUB_TEMPLATES_DIR=/app/templates \
    CAREHUB_DATA_DIR=/data

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001

# 8000: the HTTP hub; 2525: `carehub smtpd` (unprivileged; map the host's port 25 to it).
EXPOSE 8000 2525

# slim has no curl; urlopen raises (exit 1) on a refused connection, a timeout or a non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["carehub", "serve", "--host", "0.0.0.0", "--port", "8000"]
