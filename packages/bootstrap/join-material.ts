import type { MachineRole } from './cloud-init.ts';
import { type ClusterPkiPem, caCertHash, controlPlanePkiFiles } from './pki.ts';

/** One value published under a role's path in the machine secret store. */
export interface MachineSecret {
  role: MachineRole;
  name: string;
  value: string;
}

/**
 * What machines read to run `kubeadm init` or `kubeadm join`, from the cluster's PKI, its API host and a join token,
 * in the order the bootstrap step publishes it: the join token last, since machines start as soon as they see it.
 */
export function joinMaterial(pki: ClusterPkiPem, apiHost: string, token: string): MachineSecret[] {
  const roles = ['control-plane', 'worker'] as const;
  return [
    ...roles.flatMap((role): MachineSecret[] => [
      { role, name: 'api-host', value: apiHost },
      { role, name: 'ca-cert-hash', value: caCertHash(pki.clusterCa.certificatePem) },
    ]),
    ...Object.entries(controlPlanePkiFiles(pki)).map(([file, value]): MachineSecret => ({ role: 'control-plane', name: `pki/${file}`, value })),
    ...roles.map((role): MachineSecret => ({ role, name: 'join-token', value: token })),
  ];
}
