# One image for the reference API, the Locust master and its workers (docker-compose.yml).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The harness finds its locustfiles/ and scenarios/ beside its package: an editable install
# keeps them where it looks.
COPY pyproject.toml README.md ./
COPY harness ./harness
COPY migrate ./migrate
COPY locustfiles ./locustfiles
COPY scenarios ./scenarios
RUN pip install -e . \
    && useradd --create-home --uid 10001 harness \
    && mkdir -p /app/runs /data \
    && chown harness:harness /app/runs /data

USER harness

# 8000 reference API, 8089 Locust web UI, 5557 Locust master for workers, 9646 live metrics.
EXPOSE 8000 8089 5557 9646

CMD ["harness", "--help"]
