# liveblog in a container: stage 1 builds the wheel from this repository, stage 2 installs
# only that wheel (and its dependencies from PyPI) on a slim Python, run as a fixed non-root
# user. tests/test_deploy.py replays stage 1's COPY and RUN lines on a copy of the build
# context and checks the wheel carries the templates and static files; no Docker engine
# runs in the tests.
#
#   docker build -t liveblog .
#   docker run --rm -p 8000:8000 liveblog   # embedded Redis inside; see docs/deploy.md

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
# liveblog/static is a link to ../static (the checkout serves that); the wheel gets a copy.
COPY liveblog ./liveblog
COPY static ./static
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LIVEBLOG_HOST=0.0.0.0 \
    LIVEBLOG_PORT=8000 \
    LIVEBLOG_DATA_DIR=/var/lib/liveblog
# A fixed uid and gid, so that files on a mounted volume have the same owner in every
# image built from this file, and a host can grant them.
RUN groupadd --system --gid 10001 liveblog \
    && useradd --system --uid 10001 --gid liveblog --no-create-home \
       --home-dir /var/lib/liveblog --shell /usr/sbin/nologin liveblog \
    && install -d -o liveblog -g liveblog -m 0700 /var/lib/liveblog
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/liveblog-*.whl && rm -rf /wheels
USER 10001:10001
WORKDIR /var/lib/liveblog
EXPOSE 8000
# slim has no curl: Python's urllib, which fails (non-zero) on an error status or no answer.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('LIVEBLOG_PORT', '8000') + '/healthz', timeout=2)"]
CMD ["liveblog", "serve", "--workers", "2"]
