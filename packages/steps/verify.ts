import { addonDrift, listNodes, liveForbiddenAdminBindings, objectRef } from '#addons';
import { StepError } from '#core';
import { renderAddonsFor } from './addons.ts';
import type { StepServices } from './context.ts';
import { type StepResult, runStep } from './step-runner.ts';
import { apiServerCertificates, clusterApi } from './cluster-api.ts';
import { updateCluster } from '#services';

export async function verifyStep(services: StepServices, input: unknown): Promise<StepResult<Record<string, unknown>>> {
  return runStep(services, input, 'verify', async (context) => {
    const config = await clusterApi(services, context.cluster, 'verify');
    // From the order, not a plan: verify also runs in update operations, which have no plan step.
    const { controlPlane, nodePools } = context.cluster.spec;
    const nodes = await listNodes(config);
    const notReady = nodes.filter((node) => !node.ready).map((node) => node.name);
    const expected = controlPlane.replicas + nodePools.reduce((sum, pool) => sum + pool.size, 0);
    if (nodes.length < expected || notReady.length > 0) {
      throw new StepError('verify', `Expected ${expected} Ready nodes; ${nodes.length - notReady.length} are Ready${notReady.length > 0 ? ` (not Ready: ${notReady.join(', ')})` : ''}.`, true);
    }
    // Machines keep the patch they booted with until an upgrade, but never leave the cluster's minor.
    const minor = context.cluster.spec.kubernetesVersion;
    const offMinor = nodes.filter((node) => !node.kubeletVersion.startsWith(`v${minor}.`)).map((node) => `${node.name} (${node.kubeletVersion || 'no version'})`);
    if (offMinor.length > 0) throw new StepError('verify', `Nodes run a kubelet other than Kubernetes ${minor}: ${offMinor.join(', ')}.`, false);
    const pending = new Set((context.outputsOf('addons') as { pending?: string[] }).pending ?? []);
    const objects = (await renderAddonsFor(services, context)).flatMap((addon) => addon.objects).filter((object) => !pending.has(objectRef(object)));
    const problems = [...(await addonDrift(config, objects)), ...(await liveForbiddenAdminBindings(config))];
    if (problems.length > 0) throw new StepError('verify', `Hardening not in place: ${problems.join('; ')}.`, true);
    // When the certificates expire, as a client of the API server sees them.
    const { authority, apiServer } = await apiServerCertificates(services, context.cluster, 'verify');
    const iso = (date: string) => new Date(date).toISOString();
    const certificates = {
      authorityExpiresAt: iso(authority.validTo),
      apiServerExpiresAt: iso(apiServer.validTo),
      earliestExpiresAt: iso(Date.parse(authority.validTo) < Date.parse(apiServer.validTo) ? authority.validTo : apiServer.validTo),
      checkedAt: new Date().toISOString(),
    };
    // The patch release the machines run, when they all run one (an upgrade within the minor compares it with Kiln's).
    const releases = [...new Set(nodes.map((node) => node.kubeletVersion))];
    const kubernetesRelease = releases.length === 1 ? releases[0] : undefined;
    await updateCluster(services, context.input.tenantId, context.input.clusterId, (current) => {
      const { kubernetesRelease: _earlier, ...status } = current.status;
      return { ...current, status: { ...status, certificates, ...(kubernetesRelease === undefined ? {} : { kubernetesRelease }) } };
    });
    return {
      done: true,
      outputs: { readyNodes: nodes.length, certificates, ...(kubernetesRelease === undefined ? {} : { kubernetesRelease }), checked: ['nodes-ready', 'kubelets-on-ordered-minor', 'addon-objects-as-applied', 'no-cluster-admin-service-accounts'] },
    };
  });
}
