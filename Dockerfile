# dropnet: the API with its local training workers (SQLite in /data by default), or with
# DROPNET_EXECUTOR=celery the API alone; `dropnet worker` runs Celery training workers.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DROPNET_HOST=0.0.0.0 \
    DROPNET_PORT=8000 \
    DROPNET_DATABASE_URL=sqlite:////data/dropnet.db

RUN groupadd --system --gid 10001 dropnet \
    && useradd --system --uid 10001 --gid dropnet --home-dir /data --shell /usr/sbin/nologin dropnet \
    && mkdir -p /data \
    && chown dropnet:dropnet /data

WORKDIR /app
COPY constraints.txt pyproject.toml README.md alembic.ini ./
COPY migrations ./migrations
COPY service ./service
RUN pip install --constraint constraints.txt ".[celery,postgres,onnx]"

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('DROPNET_PORT', '8000') + '/healthz', timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["dropnet", "serve"]
