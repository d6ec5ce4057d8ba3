# One image for every part: docker-compose.yml runs it as the web app, the worker, beat and
# Flower, with a different command each.
FROM python:3.11-slim-bookworm

# Tesseract with the languages the project OCRs (English, Sanskrit, Hindi, Tamil), and what
# pip needs to build tesserocr against this libtesseract (requirements.txt: --no-binary).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        tesseract-ocr tesseract-ocr-eng tesseract-ocr-san tesseract-ocr-hin tesseract-ocr-tam \
        tesseract-ocr-osd poppler-utils \
        libtesseract-dev libleptonica-dev pkg-config g++ \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLASK_APP=app \
    DATA_DIR=/data

WORKDIR /app
# Requirements before the code, so that a code change does not reinstall them. The ops
# requirements are the app's and Flower's, which the flower service of docker-compose.yml runs.
COPY requirements.txt requirements-ops.txt ./
RUN pip install -r requirements-ops.txt

COPY . .

# Not root: Celery warns against running a worker as root, and nothing here needs it.
# /data is made here, owned by that user, so a new named volume mounted on it starts writable.
RUN useradd --create-home --uid 1000 proofing \
    && mkdir -p /data \
    && chown proofing /data
USER proofing

EXPOSE 5000
CMD ["gunicorn", "-w", "2", "--threads", "4", "-b", "0.0.0.0:5000", "app:create_app()"]
