# TF image FROM an official TensorFlow / NVIDIA NGC image (BASE_IMAGE, present locally; builds never pull).
# Built by harness/images/build.py with the classic builder (docker-py): no BuildKit, no RUN --mount, no network.
# Build context: this file + wheels/ (extra locked wheels, possibly none, and wheels/lock.txt).
# The benchmark payload is NOT baked in: it is bind-mounted read-only at /opt/tfmh/payload at run time.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG IMAGE_NAME
ARG TF_VERSION
ARG TF_PACKAGE
ARG PYTHON_VERSION
ARG BASE_DESC
ARG BASE_ID
ARG CUDA=
ARG CUDNN=
ARG BUILD_NOTE=
ARG PYTHON=python3
ARG BENCH_UID=1000
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1 \
    TFMH_IMAGE=${IMAGE_NAME} TFMH_TF_VERSION=${TF_VERSION} TFMH_TF_PACKAGE=${TF_PACKAGE}
LABEL tfmh="1" tfmh.image="${IMAGE_NAME}" tfmh.tf="${TF_VERSION}" tfmh.package="${TF_PACKAGE}" \
      tfmh.python="${PYTHON_VERSION}" tfmh.base="${BASE_DESC}" tfmh.base_id="${BASE_ID}" \
      tfmh.cuda="${CUDA}" tfmh.cudnn="${CUDNN}" tfmh.note="${BUILD_NOTE}"
USER root
COPY wheels/ /tmp/tfmh-wheels/
RUN if grep -q . /tmp/tfmh-wheels/lock.txt; then \
        ${PYTHON} -m pip install --no-index --find-links /tmp/tfmh-wheels --only-binary=:all: \
            --disable-pip-version-check --no-cache-dir --require-hashes -r /tmp/tfmh-wheels/lock.txt; \
    fi \
 && rm -rf /tmp/tfmh-wheels \
 && (getent group ${BENCH_UID} >/dev/null || groupadd -g ${BENCH_UID} bench) \
 && (getent passwd ${BENCH_UID} >/dev/null || useradd -u ${BENCH_UID} -g ${BENCH_UID} -M -d /tmp -s /bin/sh bench) \
 && mkdir -p /opt/tfmh/payload /in /out /data \
 && ln -sf "$(command -v ${PYTHON})" /usr/local/bin/tfmh-python
USER ${BENCH_UID}:${BENCH_UID}
WORKDIR /tmp
