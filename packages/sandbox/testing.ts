import type { ClusterSpec } from '#core';
import { renderUserData } from '#bootstrap';
import type { RecordedResource } from './cloud/index.ts';

/** A launch template as the cluster program records it: the machine's role tag and its user data, base64 as EC2 takes it. */
export function launchTemplate(name: string, role: 'control-plane' | 'worker', userData: string): RecordedResource {
  return { type: 'aws:ec2/launchTemplate:LaunchTemplate', name, id: name, inputs: { userData: Buffer.from(userData).toString('base64'), tags: { 'kiln:role': role } } };
}

/** The launch templates of an order's control plane (`<prefix>-cp`) and its pool `general` (`<prefix>-pool-general`), from what Kiln renders. */
export function renderedLaunchTemplates(clusterId: string, spec: ClusterSpec, prefix: string): RecordedResource[] {
  return [
    launchTemplate(`${prefix}-cp`, 'control-plane', renderUserData(clusterId, spec, 'control-plane')),
    launchTemplate(`${prefix}-pool-general`, 'worker', renderUserData(clusterId, spec, 'worker', 'general')),
  ];
}
