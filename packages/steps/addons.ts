import { installAddons, reconcilePoolNodes, removeAddons, renderAddons } from '#addons';
import { type ClusterPkiPem, generateClusterPki, pkiToPem } from '#bootstrap';
import { sealedSecret } from './cluster-secrets.ts';
import type { StepServices } from './context.ts';
import { type StepContext, type StepResult, runStep } from './step-runner.ts';
import { clusterApi } from './cluster-api.ts';

/** The CA behind the in-cluster ClusterIssuer: its own, so certificates it signs are not trusted by the API server. */
async function issuerCaOf(services: StepServices, context: StepContext) {
  const issuer = JSON.parse(
    await sealedSecret(services, context, 'issuerCa', async () =>
      JSON.stringify(pkiToPem(await generateClusterPki({ clusterName: `${context.cluster.name}-issuer`, apiHost: 'issuer.invalid', serviceCidr: context.cluster.spec.network.serviceCidr })).clusterCa),
    ),
  ) as ClusterPkiPem['clusterCa'];
  return { certificatePem: issuer.certificatePem, privateKeyPem: issuer.privateKeyPem };
}

/** The add-ons of the order; from the cluster record, so an update renders exactly what the provision did. */
export async function renderAddonsFor(services: StepServices, context: StepContext) {
  const apiHost = context.cluster.apiHost;
  return renderAddons(context.input.clusterId, context.cluster.spec, {
    issuerCa: await issuerCaOf(services, context),
    ...(apiHost === undefined ? {} : { apiServer: { host: apiHost, port: 6443 } }),
  });
}

/** Within the Task's 900 s timeout, leaving room to record the result. */
const ADDONS_DEADLINE_MS = 10 * 60_000;

export async function addonsStep(services: StepServices, input: unknown): Promise<StepResult<Record<string, unknown>>> {
  return runStep(services, input, 'addons', async (context) => {
    const config = await clusterApi(services, context.cluster, 'addons');
    const addons = await renderAddonsFor(services, context);
    // Waits for each chart's CRDs and workloads, then applies what depends on them (issuers, policies).
    const { applied, pending } = await installAddons(config, addons, { deadlineMs: ADDONS_DEADLINE_MS });
    const removed = await removeAddons(config, addons);
    // Every pool's nodes get the pool's labels and taints as the order says now (restricted labels only this way).
    const relabelled = await reconcilePoolNodes(config, context.cluster.spec.nodePools, 'addons');
    return { done: true, outputs: { applied, pending, removed, ...(relabelled.length === 0 ? {} : { relabelled }) } };
  });
}
