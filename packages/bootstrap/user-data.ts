import { stringify } from 'yaml';
import type { ClusterSpec } from '#core';

export type MachineRole = 'control-plane' | 'worker';

/**
 * cloud-init user data for one role. It carries no secret: a machine fetches
 * its join material at boot from the cluster's secret store with its
 * instance role, so user data (readable through the EC2 API) leaks nothing.
 */
export function renderUserData(clusterId: string, spec: ClusterSpec, role: MachineRole, pool?: string): string {
  const config = {
    ssh_pwauth: false,
    disable_root: true,
    package_update: true,
    package_upgrade: true,
    packages: ['unattended-upgrades', 'apt-listchanges'],
    write_files: [
      {
        path: '/etc/kiln/machine.env',
        permissions: '0600',
        owner: 'root:root',
        content: [
          `KILN_CLUSTER_ID=${clusterId}`,
          `KILN_ROLE=${role}`,
          ...(pool === undefined ? [] : [`KILN_POOL=${pool}`]),
          `KILN_KUBERNETES_VERSION=${spec.kubernetesVersion}`,
          '',
        ].join('\n'),
      },
      {
        path: '/etc/ssh/sshd_config.d/50-kiln.conf',
        permissions: '0600',
        owner: 'root:root',
        content: ['PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PermitRootLogin no', 'PubkeyAuthentication yes', ''].join('\n'),
      },
    ],
  };
  return `#cloud-config\n${stringify(config)}`;
}
