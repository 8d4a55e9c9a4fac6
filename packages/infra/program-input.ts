import { z } from 'zod';
import { ClusterSpec, machineOsReleaseByVersion } from '#core';
import { MAX_AVAILABILITY_ZONES } from './subnets.ts';

/**
 * Everything one run of the cluster program needs. User data is opaque here:
 * the bootstrap package renders it per role and pool.
 */
export const ClusterProgramInput = z
  .strictObject({
    tenantId: z.string().min(1).max(64),
    clusterId: z.string().min(1).max(64),
    spec: ClusterSpec,
    availabilityZones: z.array(z.string().min(1)).min(1).max(MAX_AVAILABILITY_ZONES),
    /** The Debian release the machines boot (a MACHINE_OS_RELEASES version), chosen by the step on its day. */
    machineOs: z.string().refine((version) => machineOsReleaseByVersion(version) !== undefined, 'is not a machine OS release Kiln knows'),
    /**
     * Where Kiln's own calls to the cluster's API come from: the load balancer admits them whatever the order says. At
     * most 7: a security group holds 60 inbound IPv4 rules by default (docs.aws.amazon.com/vpc/latest/userguide/
     * amazon-vpc-limits.html), and the order's ranges (up to 50) and the cluster's NAT addresses (up to 3) share it.
     */
    kilnEgressCidrs: z
      .array(z.cidrv4())
      .min(1)
      .max(7)
      .refine((cidrs) => new Set(cidrs).size === cidrs.length, 'repeats an address'),
    /**
     * The permissions boundary (a managed policy in Kiln's account) the machines' roles carry when the cluster is built
     * in Kiln's account: the runner may create roles only with it. A role in a tenant's account cannot name a policy of
     * Kiln's account, so there it is absent.
     */
    machineRoleBoundaryArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:iam::\d{12}:policy\/[\w+=,.@/-]+$/, 'must be the ARN of a managed policy')
      .optional(),
    userData: z.strictObject({
      controlPlane: z.string().min(1),
      pools: z.record(z.string(), z.string().min(1)),
    }),
  })
  .superRefine((input, ctx) => {
    if (input.spec.account !== undefined && input.machineRoleBoundaryArn !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['machineRoleBoundaryArn'], message: "is a policy of Kiln's account, which a role in the tenant's account cannot carry" });
    }
    const zones = input.availabilityZones;
    zones.forEach((zone, index) => {
      if (!new RegExp(`^${input.spec.region}[a-z]$`).test(zone)) {
        ctx.addIssue({ code: 'custom', path: ['availabilityZones', index], message: `is not a zone of ${input.spec.region}` });
      }
      if (zones.indexOf(zone) !== index) {
        ctx.addIssue({ code: 'custom', path: ['availabilityZones', index], message: 'repeats an earlier zone' });
      }
    });
    input.spec.nodePools.forEach((pool, index) => {
      if (input.userData.pools[pool.name] === undefined) {
        ctx.addIssue({ code: 'custom', path: ['userData', 'pools', pool.name], message: `node pool ${index} has no user data` });
      }
    });
  });
export type ClusterProgramInput = z.infer<typeof ClusterProgramInput>;
