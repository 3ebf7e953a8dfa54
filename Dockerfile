# syntax=docker/dockerfile:1
# Allot's production image (README, "Production bundle"): python:3.11-slim, dependencies from
# pyproject.toml, static files collected at build time, an unprivileged user, ALLOT_ENV=production.
# One image serves every role; compose.yaml picks the command (gunicorn, celery worker, celery
# beat, the one-shot migrate).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY config ./config
COPY allocation ./allocation
COPY policies ./policies
COPY exceptions ./exceptions
COPY integrations ./integrations
# Installing the project resolves and installs its dependencies (psycopg's binary wheel carries
# libpq, so no compiler or system library is needed). The project itself then runs from /app,
# beside its templates and static files, so its installed copy is removed again.
RUN pip install . && pip uninstall --yes allot

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ALLOT_ENV=production
RUN groupadd --system --gid 10001 allot \
    && useradd --system --uid 10001 --gid allot --home-dir /app --no-create-home --shell /usr/sbin/nologin allot \
    && mkdir -p /var/lib/allot/beat /var/lib/allot/metrics \
    && chown allot:allot /var/lib/allot/beat /var/lib/allot/metrics
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY manage.py pyproject.toml ./
COPY config ./config
COPY allocation ./allocation
COPY policies ./policies
COPY exceptions ./exceptions
COPY integrations ./integrations
COPY templates ./templates
COPY static ./static
# Static files are collected (and compressed for WhiteNoise) into /app/staticfiles now, so no
# container writes to the image. The key below exists for this one command only: settings
# refuse to start in production without one, and collectstatic touches no secret.
RUN SECRET_KEY=collectstatic-at-build-time-only python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q config allocation policies exceptions integrations
USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000"]
