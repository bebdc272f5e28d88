# syntax=docker/dockerfile:1
# Abidance in a container: every runtime extra, a non-root user, no build tools in the final image.
#
#   docker build -t abidance .
#   docker run --rm -p 127.0.0.1:8501:8501 -e ABIDANCE_DASHBOARD_PASSWORD=... abidance   # the offline demo
#   docker run --rm -v ./node.toml:/config/node.toml:ro -v abidance-state:/data/state \
#       --env-file .env abidance run --config /config/node.toml   # the node with a mounted config
#
# deploy/compose.yaml runs the store (ClickHouse server), the node, the dashboard and retraining.
# (No Docker engine runs on the build machines: CI lints this file, it does not build it.)

ARG PYTHON=python:3.11-slim-bookworm

FROM ${PYTHON} AS build
# The compilers of the distribution release the base image pins: only the build stage has them.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY abidance abidance
COPY streamlit_app streamlit_app
COPY ext ext
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON}
ARG EXTRAS=store,dashboard,backtest,optimize,ml,ed25519
# PyTorch from its CPU index first: the default index's Linux wheel pulls gigabytes of CUDA.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
COPY --from=build /wheels /wheels
# The wheel built above; its dependencies are bounded by its own metadata (pyproject.toml).
# hadolint ignore=DL3013
RUN wheel="$(ls /wheels/abidance-*.whl)" \
    && pip install --no-cache-dir "${wheel}[${EXTRAS}]" \
    && rm -rf /wheels
RUN useradd --create-home --uid 10001 abidance \
    && mkdir -p /data/state /data/store /data/models /config \
    && chown -R abidance:abidance /data
USER 10001
WORKDIR /home/abidance
ENV ABIDANCE_STATE_DIR=/data/state \
    ABIDANCE_STORE_DIR=/data/store \
    ABIDANCE_MODELS_DIR=/data/models \
    PYTHONUNBUFFERED=1
VOLUME ["/data/state", "/data/store", "/data/models"]
EXPOSE 8501 8123
# Healthy while the running process keeps its heartbeat: the node's state file is fresh, or the
# dashboard answers (abidance health picks whichever this container runs).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["abidance", "health"]
ENTRYPOINT ["abidance"]
CMD ["demo", "--address", "0.0.0.0", "--state-dir", "/data/state/demo"]
