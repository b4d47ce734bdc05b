# TF image on a bootstrap base (a debootstrapped Debian imported as tfmh/base-<suite>:<hash>).
# Built by harness/images/build.py with the classic builder (docker-py): no BuildKit, no RUN --mount, no network.
# Build context: this file + wheels/ (exactly the locked wheels, and wheels/lock.txt pinning them by sha256).
# The benchmark payload is NOT baked in: it is bind-mounted read-only at /opt/tfmh/payload at run time.
# Order matters on fuse-overlayfs: every metadata step above the ~1.3 GB venv layer costs ~5 s, so all of
# them come before the final COPY --from.
ARG BASE_IMAGE

FROM ${BASE_IMAGE} AS venv
ARG PYTHON=python3
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1
COPY wheels/ /wheels/
RUN ${PYTHON} -m venv /opt/venv \
 && /opt/venv/bin/python -m pip install --no-index --find-links /wheels --only-binary=:all: \
        --require-hashes -r /wheels/lock.txt \
 && /opt/venv/bin/python -m pip list --format=freeze > /opt/venv/tfmh-freeze.txt

FROM ${BASE_IMAGE}
ARG BENCH_UID=1000
RUN (getent group ${BENCH_UID} >/dev/null || groupadd -g ${BENCH_UID} bench) \
 && (getent passwd ${BENCH_UID} >/dev/null || useradd -u ${BENCH_UID} -g ${BENCH_UID} -M -d /tmp -s /bin/sh bench) \
 && mkdir -p /opt/tfmh/payload /in /out /data
ARG IMAGE_NAME
ARG TF_VERSION
ARG TF_PACKAGE
ARG PYTHON_VERSION
ARG BASE_DESC
ARG BASE_ID
ARG CUDA=
ARG CUDNN=
ARG BUILD_NOTE=
ARG WHEELS_AS_OF=
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/venv HOME=/tmp LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 \
    TFMH_IMAGE=${IMAGE_NAME} TFMH_TF_VERSION=${TF_VERSION} TFMH_TF_PACKAGE=${TF_PACKAGE}
LABEL tfmh="1" tfmh.image="${IMAGE_NAME}" tfmh.tf="${TF_VERSION}" tfmh.package="${TF_PACKAGE}" \
      tfmh.python="${PYTHON_VERSION}" tfmh.base="${BASE_DESC}" tfmh.base_id="${BASE_ID}" \
      tfmh.cuda="${CUDA}" tfmh.cudnn="${CUDNN}" tfmh.note="${BUILD_NOTE}" tfmh.wheels_as_of="${WHEELS_AS_OF}"
USER ${BENCH_UID}:${BENCH_UID}
WORKDIR /tmp
CMD ["python3", "-c", "import tensorflow as tf; print(tf.__version__)"]
COPY --from=venv /opt/venv /opt/venv
