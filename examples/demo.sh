#!/usr/bin/env bash
# Run ingress-ctrl in folder mode on examples/, with demo backends, on a fresh machine.
# Ports: HTTP 8080, HTTPS 8443, healthz/metrics 10254 (all on 127.0.0.1). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nginx >/dev/null 2>&1; then
    echo "installing nginx (Debian's nginx-light)…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi
python3 -c "import ingress_ctrl" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check -e .

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for backend in default:18081 foo:18082 bar:18083; do
    python3 examples/echo_backend.py --name "${backend%%:*}" --port "${backend##*:}" & pids+=($!)
done

cat <<'TEXT'
ingress-ctrl is starting on examples/. Try, in another terminal:
  curl -H 'Host: fanout.example.com' http://127.0.0.1:8080/foo/x        # simple fanout → foo
  curl -H 'Host: fanout.example.com' http://127.0.0.1:8080/bar          # simple fanout → bar
  curl -H 'Host: foo.example.com' http://127.0.0.1:8080/                # virtual hosting → foo
  curl -H 'Host: x.bar.example.com' http://127.0.0.1:8080/              # one-label wildcard → bar
  curl http://127.0.0.1:8080/anything                                   # single service → default
  curl -k --resolve foo.example.com:8443:127.0.0.1 https://foo.example.com:8443/
  curl http://127.0.0.1:10254/metrics
Edit a file under examples/ and the change is served within a second.
TEXT
python3 -m ingress_ctrl serve --manifests examples --listen-address 127.0.0.1 \
    --http-port 8080 --https-port 8443 --healthz-port 10254 --state-dir /tmp/ingress-ctrl-demo &
pids+=($!)
wait "${pids[-1]}"
