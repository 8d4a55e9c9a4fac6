import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Manifest, PLACEHOLDER_ISSUER_CA, applyObjects, installAddons, networkAddons, renderAddons } from '#addons';
import { KubeConfig } from '@kubernetes/client-node';
import { generateClusterPki } from '#bootstrap';
import { ClusterSpec } from '#core';
import { kubeadmApiServerTls } from '../api-server-tls.ts';
import { type SandboxCluster, startSandboxCluster } from './index.ts';
import { type HelmControllerStandIn, startHelmController } from './helm-controller.ts';
import { clientsFor, waitUntil } from './testing.ts';

const ORDER = ClusterSpec.parse({ name: 'charts', region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] });

/** Kiln's network add-ons for the order (helm-controller and the Cilium chart), as the network step renders them. */
const network = (): Manifest[] => networkAddons(renderAddons('cls_charts', ORDER, { issuerCa: PLACEHOLDER_ISSUER_CA })).flatMap((addon) => addon.objects);
const isChart = (object: Manifest) => object.kind === 'HelmChart';

/** The helm-controller Deployment's container, changed by `change`. */
function withController(objects: Manifest[], change: (container: Record<string, unknown>) => void): Manifest[] {
  return objects.map((object) => {
    if (object.kind !== 'Deployment') return object;
    const copy = structuredClone(object) as Manifest & { spec: { template: { spec: { containers: Record<string, unknown>[] } } } };
    const [container] = copy.spec.template.spec.containers;
    if (container !== undefined) change(container);
    return copy;
  });
}

describe('the sandbox helm-controller', () => {
  let cluster: SandboxCluster;
  let controller: HelmControllerStandIn | undefined;
  const ready = (name: string) =>
    cluster.objects({ kind: 'Node', name }).some((node) => (node.status as { conditions?: { type: string; status: string }[] }).conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));

  beforeEach(async () => {
    cluster = await startSandboxCluster({ name: 'charts' });
    // A fresh kubeadm cluster: kubeadm labels its control plane node with an empty value, and no CNI runs yet.
    cluster.registerNode({ name: 'control-plane-0', role: 'control-plane', cni: false });
    cluster.registerNode({ name: 'default-0', role: 'worker', cni: false });
    controller = startHelmController(cluster);
  });

  afterEach(async () => {
    await controller?.stop();
    await cluster.close();
  });

  it("runs Kiln's network add-ons on a cluster with no CNI: Cilium's bootstrap Job installs it and every node turns Ready", async () => {
    const { config } = clientsFor(cluster);
    await installAddons(config, networkAddons(renderAddons('cls_charts', ORDER, { issuerCa: PLACEHOLDER_ISSUER_CA })), { deadlineMs: 10_000, pollMs: 20, waitForCharts: false });
    await waitUntil('every node to be Ready', () => ready('control-plane-0') && ready('default-0'));
    expect(controller?.state()).toEqual({ running: true, charts: { cilium: { installed: true } } });
    // The install Job as chart.go writes it for a bootstrap chart.
    const [job] = cluster.objects({ kind: 'Job', namespace: 'kube-system', name: 'helm-install-cilium' });
    expect(job?.spec).toMatchObject({ template: { spec: { hostNetwork: true, nodeSelector: { 'node-role.kubernetes.io/control-plane': 'true' } } } });
  });

  it('does not start a container whose args replace the image command (the image has no ENTRYPOINT)', async () => {
    const { config } = clientsFor(cluster);
    await applyObjects(config, withController(network(), (container) => delete container.command).filter((object) => !isChart(object)));
    await waitUntil('the controller to give up', () => /CrashLoopBackOff/.test(controller?.state().why ?? ''));
    expect(controller?.state()).toMatchObject({ running: false, why: 'CrashLoopBackOff: exec: "--namespace": executable file not found in $PATH' });
  });

  it('does not run without the permissions its code uses: its CRDs and its cluster-wide informers', async () => {
    const { config } = clientsFor(cluster);
    const objects = network().map((object) =>
      object.kind === 'ClusterRole' ? { ...object, rules: [{ apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterrolebindings'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] }] } : object,
    );
    await applyObjects(config, objects.filter((object) => !isChart(object)));
    await waitUntil('the controller to give up', () => /forbidden/.test(controller?.state().why ?? ''));
    expect(controller?.state().why).toContain('customresourcedefinitions.apiextensions.k8s.io is forbidden: User "system:serviceaccount:kube-system:helm-controller" cannot get');
    expect(cluster.objects({ kind: 'CustomResourceDefinition' })).toEqual([]);
  });

  it('cannot reach the API server through the kubernetes Service before Cilium runs when no kube-proxy is there', async () => {
    const { config } = clientsFor(cluster);
    const withoutEnv = withController(network(), (container) => {
      container.env = (container.env as { name: string }[]).filter((variable) => !variable.name.startsWith('KUBERNETES_SERVICE_'));
    });
    await applyObjects(config, withoutEnv.filter((object) => !isChart(object)));
    await waitUntil('the controller to give up', () => /i\/o timeout/.test(controller?.state().why ?? ''));
    expect(ready('control-plane-0')).toBe(false);
  });

  it("leaves a bootstrap chart's Job pending on kubeadm's control plane label value, which is empty", async () => {
    const { config } = clientsFor(cluster);
    // Without the installer, nothing gives the control plane node the label value the Job selects.
    await applyObjects(config, network().filter((object) => !isChart(object)));
    await waitUntil('the controller to serve HelmCharts', () => controller?.state().running === true);
    await applyObjects(config, network().filter(isChart));
    await waitUntil('the chart to be seen', () => controller?.state().charts.cilium !== undefined);
    expect(controller?.state().charts.cilium).toEqual({ installed: false, why: 'Job helm-install-cilium pending: no node runs its pod' });
    expect(ready('control-plane-0')).toBe(false);
  });

  describe('on a cluster serving TLS as kubeadm does', () => {
    const API_HOST = 'charts-api.elb.eu-central-1.amazonaws.com';

    /** A kubeadm API server whose certificate has the certSANs given, with admin.conf as the client. */
    async function kubeadmCluster(certSans: string[]): Promise<KubeConfig> {
      await controller?.stop();
      await cluster.close();
      const pki = await generateClusterPki({ clusterName: 'charts', apiHost: API_HOST, serviceCidr: '10.96.0.0/12' });
      cluster = await startSandboxCluster({ name: 'charts', secure: true });
      cluster.serveTls(await kubeadmApiServerTls(pki.clusterCa, { apiHost: API_HOST, serviceCidr: '10.96.0.0/12', nodeName: 'control-plane-0', certSans }));
      cluster.registerNode({ name: 'control-plane-0', role: 'control-plane', cni: false });
      controller = startHelmController(cluster);
      const config = new KubeConfig();
      config.loadFromString(cluster.kubeconfig());
      return config;
    }

    it("cannot reach its node's API server at 127.0.0.1 when kubeadm's certificate does not name it", async () => {
      const config = await kubeadmCluster([API_HOST]);
      await applyObjects(config, network().filter((object) => !isChart(object)));
      await waitUntil('the controller to give up', () => /x509/.test(controller?.state().why ?? ''));
      expect(controller?.state().why).toMatch(/^CrashLoopBackOff: tls: failed to verify certificate: x509: certificate is valid for .*, not 127\.0\.0\.1$/);
    });

    it('installs Cilium once the certificate names 127.0.0.1, as Kiln renders the certSANs', async () => {
      const config = await kubeadmCluster([API_HOST, '127.0.0.1']);
      await installAddons(config, networkAddons(renderAddons('cls_charts', ORDER, { issuerCa: PLACEHOLDER_ISSUER_CA })), { deadlineMs: 10_000, pollMs: 20, waitForCharts: false });
      await waitUntil('the control plane node to be Ready', () => ready('control-plane-0'));
    });
  });
});
