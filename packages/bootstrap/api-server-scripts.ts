import { stringify } from 'yaml';
import type { ClusterSpec } from '#core';
import { API_SERVER_PORT, PATHS, admissionConfiguration } from './kubeadm.ts';

/**
 * A Run Command script for a file kube-apiserver reads only as it starts: `write <parameter>` puts the file from the
 * cluster's parameter in place atomically; `restart` restarts this machine's API server (the kubelet stops the static
 * pod when its manifest goes and starts it again when it is back, and the new kube-apiserver reads every file its flags
 * name afresh). `restart` succeeds only once this machine's own API server, not whichever one the load balancer picks,
 * answers /readyz; the manifest is put back whatever happens, so a failed restart never leaves the machine without
 * its API server.
 */
export function apiServerFileScript(spec: ClusterSpec, configPath: string): string {
  return [
    '#!/bin/bash',
    'set -euo pipefail',
    'umask 077',
    `REGION="${spec.region}"`,
    `CONFIG="${configPath}"`,
    'MANIFEST=/etc/kubernetes/manifests/kube-apiserver.yaml',
    'PARKED=/etc/kubernetes/kube-apiserver.yaml.parked',
    'wait_until() { for _ in $(seq 1 "$1"); do if eval "$2"; then return 0; fi; sleep 2; done; return 1; }',
    'case "${1:-}" in',
    '  write)',
    '    aws ssm get-parameter --region "$REGION" --with-decryption --name "$2" --query Parameter.Value --output text > "$CONFIG.new"',
    '    chmod 0600 "$CONFIG.new" && mv "$CONFIG.new" "$CONFIG" ;;',
    '  restart)',
    `    trap 'if [ -e "$PARKED" ]; then mv "$PARKED" "$MANIFEST"; fi' EXIT`,
    '    mv "$MANIFEST" "$PARKED"',
    '    wait_until 60 "! crictl ps --name kube-apiserver -q | grep -q ."',
    '    mv "$PARKED" "$MANIFEST"',
    `    wait_until 90 "kubectl --kubeconfig /etc/kubernetes/admin.conf --server https://127.0.0.1:${API_SERVER_PORT} --tls-server-name kubernetes get --raw /readyz >/dev/null 2>&1" ;;`,
    '  *) echo "usage: $0 write <parameter> | restart" >&2; exit 64 ;;',
    'esac',
    '',
  ].join('\n');
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

/** The control plane side of a Pod Security change: the AdmissionConfiguration (the path --admission-control-config-file names)'s `write` and `restart`. */
export function admissionConfigScript(spec: ClusterSpec): string {
  return apiServerFileScript(spec, PATHS.admissionConfig);
}
