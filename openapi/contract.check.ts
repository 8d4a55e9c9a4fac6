// What a client generated from openapi.json with openapi-typescript's default options can write (npm run openapi
// generates ./kiln.ts; npm run openapi:check checks it is current and type-checks this file against it).
import type { components, operations } from './kiln.ts';

type Schemas = components['schemas'];
type Order = operations['createCluster']['requestBody']['content']['application/json'];

// The minimal order of the README.
export const minimalOrder: Order = { name: 'demo', region: 'eu-central-1', nodePools: [{ name: 'default', size: 2 }] };

// The order as an answer shows it, defaults applied.
export const poolSizes = (cluster: Schemas['Cluster']): number[] => cluster.nodePools.map((pool) => pool.size);

// A change of the mutable parts, with null putting a member back to its default.
export const patch: Schemas['ClusterPatch'] = { nodeHealth: { maxInFlight: 2, unhealthyTimeoutMinutes: null }, maintenance: { window: { days: ['sat', 'sun'] } } };

// Pod Security per mode: warn stricter than enforce, a namespace with a level of its own for one mode.
export const podSecurity: Schemas['ClusterPatch'] = { podSecurity: { enforce: 'baseline', warn: 'restricted', namespaces: { legacy: { enforce: 'privileged' } } } };
// @ts-expect-error a level is one of privileged, baseline and restricted.
export const unknownLevel: Schemas['ClusterPatch'] = { podSecurity: { warn: 'strict' } };

// @ts-expect-error the region is fixed at creation: a patch cannot name it.
export const fixedField: Schemas['ClusterPatch'] = { region: 'eu-west-1' };

// Of the network, only the API allow-list changes.
export const allowList: Schemas['ClusterPatch'] = { network: { apiAllowedCidrs: ['203.0.113.0/24'] }, ssh: { allowedCidrs: [] } };
// @ts-expect-error the VPC range is fixed at creation.
export const fixedMember: Schemas['ClusterPatch'] = { network: { vpcCidr: '10.1.0.0/16' } };

// What the API answers: the server-set fields are there to read.
export const clusterId = (cluster: Schemas['Cluster']): string => cluster.id;
export const phase = (cluster: Schemas['Cluster']): string => cluster.status.phase;
