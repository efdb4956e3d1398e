# mirror: `mirror serve` by default, `mirror sync` as a one-shot job (see docs/service.md).
#
#   docker build -t mirror .                  # dependencies from PyPI, pinned by requirements.lock
#   docker build --build-arg PYTHON_IMAGE=... # another Python base with python3 on PATH
#
# With a wheels/ directory in the build context (the project's own wheel and every
# dependency's, e.g. from `pip wheel --no-deps -w wheels .` and `pip download`),
# the builder installs from it without any network access.
#
# Both stages use the same base: the venv's interpreter is a symlink to the base's
# python3 (/usr/local/bin/python3 on python:*-slim, /usr/bin/python3 on Debian's).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
# wheels/ in the context: install from it only (--no-index); absent, or with
# --build-arg WHEELS= : from PyPI, pinned by requirements.lock.
ARG WHEELS=wheels
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# .dockerignore keeps the context to the sources, requirements.lock and wheels/.
COPY . .
SHELL ["/bin/sh", "-eux", "-c"]
RUN python3 -m venv /opt/mirror; \
    if [ -d "$WHEELS" ] && ls "$WHEELS"/mirror-*.whl > /dev/null 2>&1; then \
        /opt/mirror/bin/pip install --no-cache-dir --no-index --find-links "$WHEELS" \
            -c requirements.lock "mirror[postgresql]"; \
    else \
        /opt/mirror/bin/pip install --no-cache-dir -c requirements.lock ".[postgresql]"; \
    fi; \
    /opt/mirror/bin/pip uninstall --quiet --yes pip setuptools; \
    /opt/mirror/bin/mirror --help > /dev/null

FROM ${PYTHON_IMAGE}
# A fixed non-root user: Kubernetes' runAsNonRoot and volume permissions rely on it.
ARG MIRROR_UID=10001
SHELL ["/bin/sh", "-eux", "-c"]
RUN groupadd --system --gid "$MIRROR_UID" mirror; \
    useradd --system --uid "$MIRROR_UID" --gid "$MIRROR_UID" --home-dir /home/mirror --shell /usr/sbin/nologin mirror; \
    install -d -o "$MIRROR_UID" -g "$MIRROR_UID" -m 0750 /home/mirror /var/lib/mirror
# Only the venv (without pip and setuptools, which only installing needs): no
# compilers, no pip cache, no sources.
COPY --from=builder /opt/mirror /opt/mirror
COPY docker/healthcheck.py /opt/mirror/healthcheck.py
# PATH in full: not every base sets one (an image imported from a root file system).
ENV PATH=/opt/mirror/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/mirror \
    XDG_STATE_HOME=/var/lib/mirror
# The SQLite ledger (when mirror.yaml names no database) lands in
# /var/lib/mirror/mirror/ledger.sqlite: mount a volume there to keep it.
VOLUME ["/var/lib/mirror"]
WORKDIR /home/mirror
USER ${MIRROR_UID}:${MIRROR_UID}
EXPOSE 8080
# Checks /healthz when the container runs `mirror serve`; any other command (a
# `mirror sync` job) is reported healthy. OCI-format builds (buildah/podman default)
# drop HEALTHCHECK: build with --format docker. Kubernetes ignores it and uses the
# Deployment's liveness and readiness probes instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/opt/mirror/bin/python", "/opt/mirror/healthcheck.py"]
ENTRYPOINT ["mirror"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
