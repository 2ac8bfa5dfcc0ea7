# CPU image: OpenVINO on CPU, no torch, no CUDA.  Weights are not in the image:
# mount a folder holding yolo11n_int8_openvino_model/ at /models.
#   docker build -t commune-vision .
#   docker run -p 8000:8000 -v $PWD/models-data:/models:ro -v $PWD/config.yaml:/config/config.yaml:ro \
#       -v cv-data:/data commune-vision
FROM python:3.11-slim-bookworm

# opencv-python's shared libraries; PyAV wheels carry their own FFmpeg.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 app
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY commune_vision ./commune_vision
COPY core ./core
COPY streams ./streams
COPY vision ./vision
COPY api ./api
COPY models ./models
COPY dashboards ./dashboards
RUN pip install --no-cache-dir . && mkdir -p /data /models /config && chown app /data

USER app
ENV COMMUNE_VISION_MODELS_DIR=/models \
    COMMUNE_VISION_DATA_DIR=/data \
    COMMUNE_VISION_HOST=0.0.0.0
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
# The same command `make demo` and the end-to-end tests run.
CMD ["commune-vision", "run", "--config", "/config/config.yaml"]
