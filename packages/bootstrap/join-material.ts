import type { MachineRole } from './cloud-init.ts';
import { type ClusterPkiPem, controlPlanePkiFiles } from './pki.ts';

/** One value published under a role's path in the machine secret store. */
export interface MachineSecret {
  role: MachineRole;
  name: string;
  value: string;
}

/**
 * What machines read to run `kubeadm init` or `kubeadm join`, from the cluster's PKI, its API host and a join token,
 * in the order the bootstrap step publishes it: the join token last, since machines start as soon as they see it. The
 * API host and CA certificate never change; the join token and the control plane's keys are withdrawn when the workflow
 * ends (steps/join-material.ts), and a later join gets them again (health/replace.ts publishJoinToken).
 */
export function joinMaterial(pki: ClusterPkiPem, apiHost: string, token: string): MachineSecret[] {
  const roles = ['control-plane', 'worker'] as const;
  return [
    ...roles.flatMap((role): MachineSecret[] => [
      { role, name: 'api-host', value: apiHost },
      // The CA joining machines verify the API server with (their discovery kubeconfig's certificate-authority-data).
      { role, name: 'cluster-ca', value: pki.clusterCa.certificatePem },
    ]),
    ...Object.entries(controlPlanePkiFiles(pki)).map(([file, value]): MachineSecret => ({ role: 'control-plane', name: `pki/${file}`, value })),
    ...roles.map((role): MachineSecret => ({ role, name: 'join-token', value: token })),
  ];
}
