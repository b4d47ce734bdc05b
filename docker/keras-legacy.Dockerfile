# keras: legacy -- appended by harness/images/imageplan.py to the image's own Dockerfile (bootstrap or
# registry) for an image that declares `keras: legacy`: Keras 2 on a Keras-3 TF release.
# wheels-keras2/ holds the matching tf_keras wheel (pinned in docker/compat.yaml) and its lock.txt. It is
# installed without its dependencies: its only one is `tensorflow`, and the image already has the TF package
# it declares (tensorflow-cpu would otherwise be joined by a second, full tensorflow).
# TF_USE_LEGACY_KERAS=1 is the image's own environment, so tf.keras is Keras 2 in every container of the
# image, whoever starts it.
ARG PYTHON=python3
ARG BENCH_UID=1000
USER root
COPY wheels-keras2/ /tmp/tfmh-keras2/
RUN ${PYTHON} -m pip install --no-index --no-deps --find-links /tmp/tfmh-keras2 --only-binary=:all: \
        --disable-pip-version-check --no-cache-dir --require-hashes -r /tmp/tfmh-keras2/lock.txt \
 && rm -rf /tmp/tfmh-keras2
ENV TF_USE_LEGACY_KERAS=1
USER ${BENCH_UID}:${BENCH_UID}
