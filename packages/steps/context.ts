import type { MachineCommands, MachineSecretStore } from '#bootstrap';
import type { ClusterSpec } from '#core';
import type { SecretSealer } from '#encryption';
import type { KilnServices } from '#services';
import type { GroupMembers } from './machine-groups.ts';

/** A cluster as far as reaching its AWS account and region is concerned. */
export interface ClusterLocation {
  id: string;
  spec: Pick<ClusterSpec, 'region' | 'account'>;
}

/**
 * AWS as one cluster sees it: in the cluster's region, and with `account` in
 * the order, in the tenant's account through the role it trusts Kiln with.
 * Machines read their secrets and run commands there, and the cluster's own
 * KMS key lives there.
 */
export interface ClusterAws {
  /** Wraps secrets under the cluster's own KMS key (its ARN, from the infrastructure step). */
  sealer(keyArn: string): SecretSealer;
  machineSecrets: MachineSecretStore;
  /** Run Command, only ever to an instance `fleet` lists. */
  machineCommands: MachineCommands;
  /** The instances in the cluster's Auto Scaling groups: the machines that are the cluster's. */
  fleet: GroupMembers;
}

/** What the workflow steps need besides the services: the clusters' own AWS, and how often to poll machines. */
export interface StepServices extends KilnServices {
  inCluster(cluster: ClusterLocation): ClusterAws;
  /** Seconds between polls of joining machines and running commands. */
  pollSeconds: number;
  /**
   * The public addresses Kiln's functions reach clusters' API servers from (production: the NAT gateways' Elastic IPs
   * of Kiln's VPC), as CIDRs: the infrastructure step has every cluster's load balancer admit them.
   */
  kilnEgressCidrs: readonly string[];
  /** The permissions boundary the machines' roles of a cluster in Kiln's own account carry (the runner may create no role without it). */
  machineRoleBoundaryArn?: string;
}
