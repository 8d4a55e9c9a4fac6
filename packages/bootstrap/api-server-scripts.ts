import { stringify } from 'yaml';
import type { ClusterSpec } from '#core';
import { API_SERVER_PORT, PATHS, admissionConfiguration } from './kubeadm.ts';

/** The lines every Run Command script that restarts this machine's kube-apiserver starts with: its static pod manifest, and a bounded wait. */
export function apiServerRestartPrelude(): string[] {
  return [
    'MANIFEST=/etc/kubernetes/manifests/kube-apiserver.yaml',
    'PARKED=/etc/kubernetes/kube-apiserver.yaml.parked',
    'wait_until() { for _ in $(seq 1 "$1"); do if eval "$2"; then return 0; fi; sleep 2; done; return 1; }',
  ];
}

/**
 * The `restart` case of those scripts: the kubelet stops the static pod when its manifest goes and starts it again
 * when it is back, and the new kube-apiserver reads every file its flags name (encryption, admission) afresh. It
 * succeeds only once this machine's own API server, not whichever one the load balancer picks, answers /readyz; the
 * manifest is put back whatever happens, so a failed restart never leaves the machine without its API server.
 */
export function apiServerRestartCase(): string[] {
  return [
    '  restart)',
    `    trap 'if [ -e "$PARKED" ]; then mv "$PARKED" "$MANIFEST"; fi' EXIT`,
    '    mv "$MANIFEST" "$PARKED"',
    '    wait_until 60 "! crictl ps --name kube-apiserver -q | grep -q ."',
    '    mv "$PARKED" "$MANIFEST"',
    `    wait_until 90 "kubectl --kubeconfig /etc/kubernetes/admin.conf --server https://127.0.0.1:${API_SERVER_PORT} --tls-server-name kubernetes get --raw /readyz >/dev/null 2>&1" ;;`,
  ];
}

/**
 * Run through SSM Run Command when the order's cluster-wide Pod Security levels change: `write <parameter>` installs
 * the AdmissionConfiguration published there, `restart` restarts this API server, which reads it only as it starts.
 */
export const ADMISSION_CONFIG_SCRIPT = '/usr/local/sbin/kiln-admission-config';

/** The admission configuration file's content, as user data writes it and the update workflow publishes it. */
export function admissionConfigurationFile(spec: ClusterSpec): string {
  return stringify(admissionConfiguration(spec));
}

/**
 * The control plane side of a Pod Security change: `write <parameter>` puts the AdmissionConfiguration from the
 * cluster's parameter in place atomically (the path --admission-control-config-file names); `restart` as the
 * encryption configuration's script restarts the API server.
 */
export function admissionConfigScript(spec: ClusterSpec): string {
  return [
    '#!/bin/bash',
    'set -euo pipefail',
    'umask 077',
    `REGION="${spec.region}"`,
    `CONFIG="${PATHS.admissionConfig}"`,
    ...apiServerRestartPrelude(),
    'case "${1:-}" in',
    '  write)',
    '    aws ssm get-parameter --region "$REGION" --with-decryption --name "$2" --query Parameter.Value --output text > "$CONFIG.new"',
    '    chmod 0600 "$CONFIG.new" && mv "$CONFIG.new" "$CONFIG" ;;',
    ...apiServerRestartCase(),
    '  *) echo "usage: $0 write <parameter> | restart" >&2; exit 64 ;;',
    'esac',
    '',
  ].join('\n');
}
