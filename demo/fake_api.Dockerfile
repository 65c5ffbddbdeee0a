# The fake demo-shop API on port 8080 (plain HTTP). Extra arguments (--count, --seed) may follow.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ENV PYTHONPATH=/opt/fake-api LANG=C.UTF-8 PYTHONUNBUFFERED=1
COPY live_tests /opt/fake-api/live_tests
EXPOSE 8080
ENTRYPOINT ["python3", "-m", "live_tests.demo.fake_api", "--host", "0.0.0.0", "--port", "8080"]
