FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY liveblog ./liveblog
COPY static ./static
RUN pip install --no-cache-dir . && useradd --system liveblog
USER liveblog
EXPOSE 8000
CMD ["liveblog", "serve", "--workers", "2"]
