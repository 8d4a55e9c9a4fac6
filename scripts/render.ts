import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { PLACEHOLDER_ISSUER_CA, renderAddons } from '#addons';
import {
  admissionConfiguration,
  apiServerSubjectAltNames,
  auditPolicy,
  discoveryKubeconfig,
  encryptionConfiguration,
  generateClusterPki,
  joinConfiguration,
  kubeletConfiguration,
  renderInitConfiguration,
  renderJoinConfiguration,
  renderSshdConfig,
  renderUserData,
  toYamlDocuments,
} from '#bootstrap';
import { ClusterSpec, KilnError, type Problem, assertOrderRules, machineOsProblem, machineOsReleaseOf, problemFor, validationErrorOf } from '#core';
import { LOCAL_EGRESS_ADDRESS, LOCAL_KMS_PLUGIN_IMAGE, SandboxCloud } from '#sandbox';

/**
 * `npm run render -- <order.json> <dir>`: everything Kiln would hand to the
 * cloud and the machines for one order, written as files for review. The
 * order is validated exactly as the API does (400 for shape, 422 for rules);
 * a rejected order prints the problem document to stderr and exits 2.
 * Key material never appears: secrets are placeholders and the PKI is
 * throwaway, used only for the public certificates.
 */

/** Fixed so two renders of the same order can be diffed. */
export const RENDER_CLUSTER_ID = 'cls_render00000000000000000000';
const RENDER_TENANT_ID = 'ten_render00000000000000000000';

export interface RenderIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** The order, or the problem the API would answer it with. */
export function validateOrder(order: unknown): { spec: ClusterSpec } | { problem: Problem } {
  const parsed = ClusterSpec.safeParse(order);
  if (!parsed.success) {
    const error = validationErrorOf(parsed.error);
    return { problem: problemFor(error.code, error.detail, error.errors) };
  }
  try {
    assertOrderRules(parsed.data, { kmsPluginImage: LOCAL_KMS_PLUGIN_IMAGE });
  } catch (error) {
    if (error instanceof KilnError) return { problem: problemFor(error.code, error.detail, error.errors) };
    throw error;
  }
  return { spec: parsed.data };
}

/** The OS the infrastructure step gives machines today (the order rules refuse every order on a day with none). */
function machineOsToday(): string {
  const now = new Date();
  const os = machineOsReleaseOf(now);
  if (os === undefined) throw new Error(machineOsProblem(now));
  return os.version;
}

async function infrastructureResources(spec: ClusterSpec, userData: { controlPlane: string; pools: Record<string, string> }) {
  const cloud = new SandboxCloud({ warmSpare: false });
  try {
    const outputs = await cloud.up({
      tenantId: RENDER_TENANT_ID,
      clusterId: RENDER_CLUSTER_ID,
      spec,
      availabilityZones: ['a', 'b', 'c'].map((zone) => `${spec.region}${zone}`),
      machineOs: machineOsToday(),
      // Local mode's stand-in for the NAT addresses of Kiln's VPC.
      kilnEgressCidrs: [`${LOCAL_EGRESS_ADDRESS}/32`],
      // As the infrastructure step passes it for a cluster in Kiln's account (the operator's KILN_MACHINE_ROLE_BOUNDARY_ARN).
      machineRoleBoundaryArn: cloud.machineRoleBoundaryArn,
      userData,
    });
    const resources = cloud.resources(RENDER_CLUSTER_ID).map(({ type, name, inputs }) => ({ type, name, inputs }));
    return { outputs, resources };
  } finally {
    await cloud.close();
  }
}

/** Renders every artefact for `spec` under `dir`; returns the paths written, relative to `dir`. */
export async function renderCluster(spec: ClusterSpec, dir: string): Promise<string[]> {
  const userData = {
    // The KMS plugin's image, as local mode configures it (an operator names the one they built).
    controlPlane: renderUserData(RENDER_CLUSTER_ID, spec, 'control-plane', undefined, { kmsPluginImage: LOCAL_KMS_PLUGIN_IMAGE }),
    pools: Object.fromEntries(spec.nodePools.map((pool) => [pool.name, renderUserData(RENDER_CLUSTER_ID, spec, 'worker', pool.name)])),
  };
  const { outputs, resources } = await infrastructureResources(spec, userData);
  const pki = await generateClusterPki({ clusterName: spec.name, apiHost: outputs.apiHost, serviceCidr: spec.network.serviceCidr });
  // The bootstrap token stays a placeholder: it is a secret, and this output is for review.
  const target = { apiHost: outputs.apiHost, caCertificatePem: pki.clusterCa.certificatePem };

  const files: Record<string, string> = {
    'cloud-init/control-plane.yaml': userData.controlPlane,
    ...Object.fromEntries(Object.entries(userData.pools).map(([pool, text]) => [`cloud-init/${pool}.yaml`, text])),
    'kubeadm/init-configuration.yaml': renderInitConfiguration(spec, target),
    'kubeadm/join-control-plane.yaml': renderJoinConfiguration(spec, 'control-plane'),
    // One JoinConfiguration per pool: their labels and taints differ.
    'kubeadm/join-worker.yaml': toYamlDocuments(spec.nodePools.map((pool) => joinConfiguration(spec, 'worker', pool))),
    // What joining machines discover the cluster from (the token a placeholder).
    'kubeadm/discovery.conf': toYamlDocuments([discoveryKubeconfig(target)]),
    'kubeadm/kubelet-configuration.yaml': stringify(kubeletConfiguration()),
    'kubeadm/audit-policy.yaml': stringify(auditPolicy()),
    'kubeadm/admission-configuration.yaml': stringify(admissionConfiguration(spec)),
    'sshd/kiln.conf': renderSshdConfig(),
    'encryption/encryption-config.yaml': stringify(encryptionConfiguration(spec)),
    // One file per add-on; the issuer CA's key material is a placeholder, as every secret here is.
    ...Object.fromEntries(
      renderAddons(RENDER_CLUSTER_ID, spec, { issuerCa: PLACEHOLDER_ISSUER_CA, apiServer: { host: outputs.apiHost, port: 6443 } })
        .filter((addon) => addon.objects.length > 0)
        .map((addon) => [`addons/${addon.name}.yaml`, toYamlDocuments(addon.objects)]),
    ),
    'infra/resources.json': `${JSON.stringify(resources, null, 2)}\n`,
    'pki/ca.crt': pki.clusterCa.certificatePem,
    'pki/apiserver.crt': pki.apiServer.certificatePem,
    'pki/apiserver-names.json': `${JSON.stringify(apiServerSubjectAltNames(outputs.apiHost, spec.network.serviceCidr), null, 2)}\n`,
  };
  for (const [path, content] of Object.entries(files)) {
    const file = join(dir, path);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, content, { mode: 0o600 });
  }
  return Object.keys(files);
}

/** The command: returns the exit code (0 written, 2 order rejected, 64 usage). */
export async function runRender(args: readonly string[], io: RenderIo): Promise<number> {
  const [orderPath, outDir] = args;
  if (orderPath === undefined || outDir === undefined) {
    io.stderr('usage: npm run render -- <order.json> <output-dir>\n');
    return 64;
  }
  let order: unknown;
  try {
    order = JSON.parse(await readFile(orderPath, 'utf8'));
  } catch (error) {
    const problem = problemFor('malformed_request', `The order is not readable JSON: ${error instanceof Error ? error.message : String(error)}`);
    io.stderr(`${JSON.stringify(problem, null, 2)}\n`);
    return 2;
  }
  const result = validateOrder(order);
  if ('problem' in result) {
    io.stderr(`${JSON.stringify(result.problem, null, 2)}\n`);
    return 2;
  }
  const written = await renderCluster(result.spec, resolve(outDir));
  io.stdout(`${written.map((path) => join(outDir, path)).join('\n')}\n`);
  return 0;
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (invokedDirectly) {
  process.exitCode = await runRender(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
}
