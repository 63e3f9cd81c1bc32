# The Steerway gateway image: dependencies installed from uv.lock in a builder stage, the
# virtual environment copied into a slim runtime stage that runs as an unprivileged user.
#
#   docker build -t steerway .
#   docker run -p 8080:8080 steerway serve --host 0.0.0.0
#
# docker-compose.yml at the root runs two replicas of it with Postgres, Redis, Prometheus and
# Grafana (docs/deployment.md).

# Python 3.11, the version the test suite runs on.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
# The same uv as the Makefile's UV_VERSION, so the image resolves exactly what `make install` does.
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/steerway
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project
COPY README.md ./
COPY server ./server
COPY gateway ./gateway
COPY providers ./providers
COPY rules ./rules
COPY telemetry ./telemetry
COPY admin_ui ./admin_ui
COPY migrations ./migrations
RUN uv sync --locked --no-dev --no-editable

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 steerway \
    && useradd --system --uid 10001 --gid steerway --home-dir /var/lib/steerway \
        --create-home --shell /usr/sbin/nologin steerway \
    && install --directory --owner=steerway --group=steerway /var/lib/steerway/spill
COPY --from=builder /opt/steerway /opt/steerway
# The health check asks this port: set it when serving on another one (`serve --port`).
ENV PATH=/opt/steerway/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    STEERWAY_HEALTHCHECK_PORT=8080
# Relative paths in the config (spill files, the default SQLite file) land in the user's home.
WORKDIR /var/lib/steerway
USER steerway
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/readyz' % os.environ.get('STEERWAY_HEALTHCHECK_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(url, timeout=2).status == 200 else 1)"]
ENTRYPOINT ["steerway"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
