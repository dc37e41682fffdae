# AURAX: one image for the web server, the Celery worker and beat (see compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    AURAX_DATA_DIR=/data \
    LOG_FORMAT=json \
    VENV=/usr/local \
    HOST=0.0.0.0 \
    PORT=8000 \
    CELERY_WORKER=0

WORKDIR /app
RUN useradd --create-home --uid 1000 aurax && mkdir -p /data && chown aurax:aurax /data

COPY pyproject.toml ./
COPY . .
RUN pip install --upgrade pip && pip install .

# Static files are collected at build time with a throwaway key; the real one comes at run time.
RUN SECRET_KEY=build-only AURAX_ENCRYPTION_KEYS=MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE= \
    AURAX_DATA_DIR=/tmp/build python manage.py collectstatic --noinput --verbosity 0 \
    && rm -rf /tmp/build

USER aurax
EXPOSE 8000
# Migrations and the admin account run in the "migrate" service of compose.yaml; workers run in
# their own containers (CELERY_WORKER=0: bin/serve starts daphne alone, on uvloop).
CMD ["bin/serve"]
