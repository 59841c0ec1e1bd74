# dropnet: the API with its local training workers (SQLite in /data by default), or with
# DROPNET_EXECUTOR=celery the API alone; `dropnet worker` runs Celery training workers.

# Build stage: install dropnet and its dependencies (all wheels, no compiler) into a virtual
# environment; nothing else of this stage reaches the image. A build behind a TLS-inspecting
# proxy may pass a pip config as the secret `pip.conf` (and its CA bundle as `ca.crt`, mounted
# at /run/secrets/ca.crt): secrets are mounted for this one RUN only and leave no trace.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY constraints.txt pyproject.toml README.md ./
COPY migrations ./migrations
COPY service ./service
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf --mount=type=secret,id=ca.crt \
    python -m venv /opt/dropnet \
    && /opt/dropnet/bin/pip install --constraint constraints.txt ".[celery,postgres]" \
    && /opt/dropnet/bin/pip uninstall --yes pip setuptools \
    && find /opt/dropnet -name __pycache__ -type d -prune -exec rm -rf {} +

# Final stage: the base image, the virtual environment, a non-root user.
FROM python:3.11-slim-bookworm
ENV PATH=/opt/dropnet/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DROPNET_HOST=0.0.0.0 \
    DROPNET_PORT=8000 \
    DROPNET_DATABASE_URL=sqlite:////data/dropnet.db

RUN groupadd --system --gid 10001 dropnet \
    && useradd --system --uid 10001 --gid dropnet --home-dir /data --shell /usr/sbin/nologin dropnet \
    && mkdir -p /data \
    && chown dropnet:dropnet /data
COPY --from=build /opt/dropnet /opt/dropnet

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('DROPNET_PORT', '8000') + '/healthz', timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["dropnet", "serve"]
