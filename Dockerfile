# An image of rtest itself, used by docker-compose.yml: `docker compose run --rm rtest ...`.
# Steps still run as sibling containers on the host's engine (the socket is mounted).
#
# Online:  docker compose build rtest        (BASE_IMAGE defaults to python:3.11-slim-bookworm)
# Offline: put every wheel rtest needs into ./wheels and use a Debian root as the base:
#   pip download -d wheels --python-version 3.11 --implementation cp --only-binary=:all: \
#       --platform manylinux2014_x86_64 . pip hatchling
#   debootstrap --variant=minbase --include=python3 bookworm /var/cache/rtest-ci/bookworm-root
#   tar -C /var/cache/rtest-ci/bookworm-root -c . | docker import - rtest/debian-bookworm-python:offline
#   RTEST_PYTHON_IMAGE=rtest/debian-bookworm-python:offline RTEST_WHEELHOUSE=/src/wheels docker-compose build rtest
ARG BASE_IMAGE=python:3.11-slim-bookworm

# Stage 1 installs into /rtest-root, so the source tree and wheels never become layers of the image.
FROM ${BASE_IMAGE} AS install
ARG BASE_IMAGE
# Non-empty: install only from this folder inside the image (the context's wheels/ lands at /src/wheels).
ARG WHEELHOUSE=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_BREAK_SYSTEM_PACKAGES=1
COPY . /src
RUN set -eu; mkdir -p /rtest-root; \
    src=""; if [ -n "$WHEELHOUSE" ]; then src="--no-index --find-links $WHEELHOUSE"; fi; \
    if python3 -m pip --version >/dev/null 2>&1; then pip="python3 -m pip"; \
    elif [ -n "$WHEELHOUSE" ]; then \
        pip="python3 $(ls "$WHEELHOUSE"/pip-*.whl | head -n 1)/pip"; \
        $pip install $src --root /rtest-root pip; \
    else echo "python3 in $BASE_IMAGE has no pip; build with a wheelhouse (see the top of this Dockerfile)" >&2; exit 1; fi; \
    $pip install $src --root /rtest-root /src

FROM ${BASE_IMAGE}
LABEL rtest.image="1" \
      rtest.image.name="rtest"
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    LANG=C.UTF-8
COPY --from=install /rtest-root/ /
RUN rtest --version
ENTRYPOINT ["rtest"]
CMD ["--help"]
