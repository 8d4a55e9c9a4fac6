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
