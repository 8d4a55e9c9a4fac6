import { V1Namespace, V1Pod } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type SandboxCluster, startSandboxCluster } from './cluster.ts';
import type { JsonObject } from './json.ts';
import { podSecurityViolations, forbiddenDetail } from './pod-security-checks.ts';
import { clientsFor, failureOf, manifest, statusOf } from './testing.ts';

const CONFIG_PATH = '/etc/kubernetes/kiln/admission-configuration.yaml';

/** An AdmissionConfiguration as kube-apiserver reads it, with the PodSecurity defaults inline. */
function admissionConfiguration(defaults: Record<string, string>, exemptNamespaces: string[] = []): JsonObject {
  return {
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'AdmissionConfiguration',
    plugins: [
      {
        name: 'PodSecurity',
        configuration: { apiVersion: 'pod-security.admission.config.k8s.io/v1', kind: 'PodSecurityConfiguration', defaults, exemptions: { namespaces: exemptNamespaces } },
      },
    ],
  };
}

const noFiles = () => undefined;

/** A pod as most charts write one: no securityContext at all (baseline admits it, restricted does not). */
const plainPod = (name: string): V1Pod => manifest(V1Pod, { metadata: { name }, spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] } });

/** A pod the restricted level admits. */
const restrictedPod = (name: string): V1Pod =>
  manifest(V1Pod, {
    metadata: { name },
    spec: {
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
    },
  });

let cluster: SandboxCluster;

beforeEach(async () => {
  cluster = await startSandboxCluster({ name: 'pod-security' });
});

afterEach(async () => {
  await cluster.close();
});

async function namespace(name: string, labels: Record<string, string> = {}): Promise<void> {
  await clientsFor(cluster).core.createNamespace({ body: manifest(V1Namespace, { metadata: { name, labels } }) });
}

describe('Pod Security admission in the sandbox API server', () => {
  it('admits any pod while no AdmissionConfiguration was loaded: every default is privileged', async () => {
    const { core } = clientsFor(cluster);
    await core.createNamespacedPod({ namespace: 'default', body: manifest(V1Pod, { metadata: { name: 'root' }, spec: { hostNetwork: true, containers: [{ name: 'app', image: 'busybox:1.37', securityContext: { privileged: true } }] } }) });
    expect(cluster.objects({ kind: 'Pod', name: 'root' })).toHaveLength(1);
  });

  it('refuses a pod below the enforce level its API server loaded, with the plugin\'s message, in a namespace without labels', async () => {
    cluster.setAdmissionConfiguration(admissionConfiguration({ enforce: 'restricted', audit: 'restricted', warn: 'restricted' }), CONFIG_PATH, noFiles);
    await namespace('team');
    const status = statusOf(await failureOf(clientsFor(cluster).core.createNamespacedPod({ namespace: 'team', body: plainPod('web') })));
    expect(status).toMatchObject({
      code: 403,
      reason: 'Forbidden',
      message:
        'pods "web" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false), ' +
        'unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true), ' +
        'seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
      details: { name: 'web', kind: 'pods' },
    });
    expect(cluster.objects({ kind: 'Pod', name: 'web' })).toEqual([]);
    await clientsFor(cluster).core.createNamespacedPod({ namespace: 'team', body: restrictedPod('fine') });
  });

  it('lets a namespace label override the default, and exempts the namespaces the configuration names', async () => {
    cluster.setAdmissionConfiguration(admissionConfiguration({ enforce: 'restricted' }, ['kube-system']), CONFIG_PATH, noFiles);
    await namespace('legacy', { 'pod-security.kubernetes.io/enforce': 'baseline' });
    const { core } = clientsFor(cluster);
    await core.createNamespacedPod({ namespace: 'legacy', body: plainPod('web') });
    await core.createNamespacedPod({ namespace: 'kube-system', body: manifest(V1Pod, { metadata: { name: 'agent' }, spec: { hostNetwork: true, containers: [{ name: 'agent', image: 'cilium:1' }] } }) });
    const hostNetwork = statusOf(await failureOf(core.createNamespacedPod({ namespace: 'legacy', body: manifest(V1Pod, { metadata: { name: 'host' }, spec: { hostNetwork: true, containers: [{ name: 'app', image: 'x' }] } }) })));
    expect(hostNetwork.message).toBe('pods "host" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)');
  });

  it('admits a pod below a stricter warn level with a Warning header, and records a stricter audit level on its audit event', async () => {
    cluster.setAdmissionConfiguration(admissionConfiguration({ enforce: 'baseline', audit: 'restricted', warn: 'restricted' }), CONFIG_PATH, noFiles);
    await namespace('team');
    const { core } = clientsFor(cluster);
    const created = await core.createNamespacedPodWithHttpInfo({ namespace: 'team', body: plainPod('web') });
    expect(created.httpStatusCode).toBe(201);
    const warning = created.headers.warning ?? '';
    expect(warning).toMatch(/^299 - "would violate PodSecurity \\"restricted:latest\\": allowPrivilegeEscalation != false/);
    const audited = cluster.requestLog.find((entry) => entry.verb === 'create' && entry.resource === 'pods');
    expect(audited?.warnings).toEqual([expect.stringContaining('would violate PodSecurity "restricted:latest"')]);
    expect(audited?.auditAnnotations).toMatchObject({
      'pod-security.kubernetes.io/enforce-policy': 'baseline:latest',
      'pod-security.kubernetes.io/audit-violations': expect.stringContaining('would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false') as unknown,
    });
  });

  it('warns about a Deployment whose pods would break the warn level, and never refuses one', async () => {
    cluster.setAdmissionConfiguration(admissionConfiguration({ enforce: 'restricted', warn: 'restricted' }), CONFIG_PATH, noFiles);
    await namespace('team');
    const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'team' }, spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx:1.29' }] } } } };
    const response = await fetch(`${cluster.url}/apis/apps/v1/namespaces/team/deployments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(deployment) });
    expect(response.status).toBe(201);
    expect(response.headers.get('warning')).toContain('would violate PodSecurity \\"restricted:latest\\"');
  });

  it('refuses a namespace whose Pod Security label names no level, as the plugin validates namespaces', async () => {
    cluster.setAdmissionConfiguration(admissionConfiguration({ enforce: 'restricted' }), CONFIG_PATH, noFiles);
    const status = statusOf(await failureOf(namespace('typo', { 'pod-security.kubernetes.io/enforce': 'strict' })));
    expect(status).toMatchObject({
      code: 422,
      reason: 'Invalid',
      message: 'Namespace "typo" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted',
    });
  });

  it('keeps the defaults an API server started with until it loads another configuration', async () => {
    cluster.setAdmissionConfiguration(admissionConfiguration({ enforce: 'restricted' }), CONFIG_PATH, noFiles);
    await namespace('first');
    const { core } = clientsFor(cluster);
    await failureOf(core.createNamespacedPod({ namespace: 'first', body: plainPod('web') }));
    cluster.setAdmissionConfiguration(admissionConfiguration({ enforce: 'baseline' }), CONFIG_PATH, noFiles);
    await namespace('second');
    await core.createNamespacedPod({ namespace: 'second', body: plainPod('web') });
  });

  it('reads a PodSecurity configuration named by path, relative to the AdmissionConfiguration', async () => {
    const files: Record<string, string> = {
      '/etc/kubernetes/kiln/pod-security.yaml': 'apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\ndefaults:\n  enforce: baseline\n',
    };
    cluster.setAdmissionConfiguration({ apiVersion: 'apiserver.config.k8s.io/v1', kind: 'AdmissionConfiguration', plugins: [{ name: 'PodSecurity', path: 'pod-security.yaml' }] }, CONFIG_PATH, (path) => files[path]);
    const hostNetwork = manifest(V1Pod, { metadata: { name: 'host' }, spec: { hostNetwork: true, containers: [{ name: 'app', image: 'x' }] } });
    expect(statusOf(await failureOf(clientsFor(cluster).core.createNamespacedPod({ namespace: 'default', body: hostNetwork }))).code).toBe(403);
  });

  it('does not start with a configuration kube-apiserver would refuse, and keeps what it had', async () => {
    cluster.setAdmissionConfiguration(admissionConfiguration({ enforce: 'baseline' }), CONFIG_PATH, noFiles);
    expect(() => { cluster.setAdmissionConfiguration(admissionConfiguration({ enforce: 'strict' }), CONFIG_PATH, noFiles); }).toThrow(
      'PodSecurity invalid: [defaults.enforce: Invalid value: "strict": must be one of privileged, baseline, restricted]',
    );
    expect(() => { cluster.setAdmissionConfiguration({ apiVersion: 'apiserver.config.k8s.io/v1', kind: 'AdmissionConfiguration', plugins: [{ name: 'PodSecurity', path: 'missing.yaml' }] }, CONFIG_PATH, noFiles); }).toThrow(
      "Couldn't open admission plugin configuration /etc/kubernetes/kiln/missing.yaml",
    );
    await clientsFor(cluster).core.createNamespacedPod({ namespace: 'default', body: plainPod('web') });
  });
});

describe('the Pod Security Standards checks', () => {
  const check = (level: 'baseline' | 'restricted', spec: JsonObject, metadata: JsonObject = {}) => forbiddenDetail(podSecurityViolations(level, metadata, spec));

  it('finds what baseline forbids, in upstream order', () => {
    const spec: JsonObject = {
      hostPID: true,
      volumes: [{ name: 'root', hostPath: { path: '/' } }],
      securityContext: { sysctls: [{ name: 'kernel.msgmax', value: '1' }] },
      containers: [
        { name: 'a', image: 'x', ports: [{ containerPort: 80, hostPort: 8080 }], securityContext: { privileged: true, capabilities: { add: ['NET_ADMIN', 'CHOWN'] } } },
        { name: 'b', image: 'x', livenessProbe: { httpGet: { host: '10.0.0.1', port: 80 } }, securityContext: { procMount: 'Unmasked', seccompProfile: { type: 'Unconfined' } } },
      ],
    };
    expect(check('baseline', spec)).toBe(
      'non-default capabilities (container "a" must not include "NET_ADMIN" in securityContext.capabilities.add), host namespaces (hostPID=true), hostPath volumes (volume "root"), ' +
        'hostPort (container "a" uses hostPort 8080), probe or lifecycle host (container "b" uses probe or lifecycle host "10.0.0.1"), privileged (container "a" must not set securityContext.privileged=true), ' +
        'procMount (container "b" must not set securityContext.procMount to "Unmasked"), seccompProfile (container "b" must not set securityContext.seccompProfile.type to "Unconfined"), forbidden sysctls (kernel.msgmax)',
    );
  });

  it('lets restricted override the baseline checks it tightens, and admits a pod that meets it', () => {
    const spec: JsonObject = {
      volumes: [{ name: 'data', nfs: { server: 'nfs', path: '/' } }, { name: 'config', configMap: { name: 'c' } }],
      securityContext: { runAsUser: 0 },
      initContainers: [{ name: 'init', image: 'x', securityContext: { runAsNonRoot: false, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE', 'SYS_TIME'] } } }],
    };
    expect(check('restricted', spec)).toBe(
      'unrestricted capabilities (container "init" must not include "SYS_TIME" in securityContext.capabilities.add), restricted volume types (volume "data" uses restricted volume type "nfs"), ' +
        'runAsNonRoot != true (container "init" must not set securityContext.runAsNonRoot=false), runAsUser=0 (pod must not set runAsUser=0), ' +
        'seccompProfile (pod or container "init" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    );
    expect(check('restricted', { securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } }, containers: [{ name: 'a', image: 'x', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }] })).toBe('');
  });
});
