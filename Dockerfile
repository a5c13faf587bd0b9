# syntax=docker/dockerfile:1
#
# The cross-entropy service as an image: `docker build -t xent-service .`, then
# `docker run --rm -p 8000:8000 xent-service`. Configure it with XENT_* variables (XENT_PORT, not
# --port, so that the HEALTHCHECK follows). Any Python 3.11+ image with `python` on PATH and the venv
# module works as a base: `--build-arg BASE_IMAGE=...`.
#
# Behind a TLS-intercepting proxy, pip can be given a configuration and a CA bundle for the build
# only, as BuildKit secrets (they never land in a layer; without them pip uses its defaults):
#   docker build --secret id=pip.conf,src=my-pip.conf --secret id=pip-ca.crt,src=my-ca.crt .
# where my-pip.conf says `cert = /run/secrets/pip-ca.crt` under [global].
ARG BASE_IMAGE=python:3.11-slim

# --- build: a virtual environment in /opt/venv, the locked dependencies first, then the package ------
# requirements.txt (made by scripts/lock) pins every dependency with its hashes: the image gets the
# versions the test suite ran with (Python 3.11, as the default base image), whatever PyPI has today.
FROM ${BASE_IMAGE} AS build
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements.txt ./
RUN --mount=type=secret,id=pip.conf --mount=type=secret,id=pip-ca.crt \
    PIP_CONFIG_FILE=/run/secrets/pip.conf /opt/venv/bin/pip install --no-cache-dir --require-hashes -r requirements.txt
COPY pyproject.toml README.md LICENSE ./
COPY service ./service
RUN --mount=type=secret,id=pip.conf --mount=type=secret,id=pip-ca.crt \
    PIP_CONFIG_FILE=/run/secrets/pip.conf /opt/venv/bin/pip install --no-cache-dir --no-deps .

# --- runtime: the base image and the virtual environment, nothing else -------------------------------
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="xent-service" \
      org.opencontainers.image.description="The reference cross-entropy service" \
      org.opencontainers.image.licenses="MIT"
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    XENT_PORT=8000
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('XENT_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["python", "-m", "service", "--host", "0.0.0.0"]
