# ingress-ctrl controller: the Python controller and Debian's nginx in one image; nginx runs as the
# controller's child so the controller can `nginx -t` and reload it.
#   docker build -t ghcr.io/ingress-ctrl/controller:0.1.0 .
# Runs as uid 65532 with no capabilities: nginx listens on 80/443 thanks to the Pod's sysctl
# net.ipv4.ip_unprivileged_port_start=0 (see deploy/), and writes only under --state-dir, so the
# root filesystem can be read-only.
FROM python:3.11.7-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp

# Debian's nginx (bookworm's nginx-light is only a transitional package that pulls in this one).
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY ingress_ctrl/ ./ingress_ctrl/
COPY templates/ ./templates/
RUN pip install --no-cache-dir . \
    && rm -rf /src

WORKDIR /
USER 65532:65532
EXPOSE 80 443 10254
ENTRYPOINT ["ingress-ctrl"]
CMD ["run"]
