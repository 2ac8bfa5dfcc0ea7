# CPU image: OpenVINO on CPU, no torch, no CUDA (the GPU image is Dockerfile.gpu).
# Weights are not in the image: mount a folder holding yolo11n_int8_openvino_model/ at
# /models, or set COMMUNE_VISION_MODEL to a path under a mounted folder.
#   docker build -t commune-vision .
#   docker run --init -p 8000:8000 -v $PWD/models-data:/models:ro \
#       -v $PWD/config.yaml:/config/config.yaml:ro -v cv-data:/data commune-vision
# The same image runs every role (docs/deployment.md): `commune-vision run` (default
# CMD, the whole service on one box), `commune-vision api` and `commune-vision worker`.

# Build stage: compilers never reach the runtime image, and the venv is copied whole.
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, at the versions the test suite last passed with (constraints.txt),
# in their own layer: a code change then rebuilds only the small layer below.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt

COPY README.md LICENSE ./
COPY commune_vision ./commune_vision
COPY core ./core
COPY streams ./streams
COPY vision ./vision
COPY api ./api
COPY models ./models
COPY dashboards ./dashboards
# --no-deps: every dependency is already in, pinned; this only adds our packages.
RUN pip install --no-deps -c constraints.txt .

# Runtime stage.
FROM python:3.11-slim-bookworm

# opencv-python's shared libraries; PyAV wheels carry their own FFmpeg.
# DL3008 (pin apt versions) is ignored: Debian drops superseded versions from its
# mirrors, so a pinned one breaks the build weeks later; the base image tag is pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid, so a bind-mounted or NFS /data can be chowned to it (10001:10001).
RUN useradd --create-home --uid 10001 --user-group app \
    && mkdir -p /data /models /config \
    && chown app:app /data
COPY --from=build /opt/venv /opt/venv
COPY deploy/healthcheck.py /opt/commune-vision/healthcheck.py

USER 10001:10001
WORKDIR /home/app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    COMMUNE_VISION_MODELS_DIR=/models \
    COMMUNE_VISION_DATA_DIR=/data \
    COMMUNE_VISION_HOST=0.0.0.0
EXPOSE 8000
VOLUME ["/data"]
# api and run answer GET /healthz (200, or 503 while Redis is down). A worker has no
# HTTP port: run it with `healthcheck.py worker` (docker-compose.yml does).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/opt/commune-vision/healthcheck.py"]
# The same command `make demo` and the end-to-end tests run.
CMD ["commune-vision", "run", "--config", "/config/config.yaml"]
