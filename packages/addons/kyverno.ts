import type { ClusterSpec } from '#core';
import { SYSTEM_NAMESPACES, psaLabels } from './baseline.ts';
import { CHARTS, helmChart } from './charts.ts';
import type { Manifest } from './kube.ts';

const NAMESPACE = 'kyverno';
type Level = ClusterSpec['podSecurity']['defaultLevel'];
type Mode = ClusterSpec['podSecurity']['defaultMode'];

const failureAction = (mode: Mode): 'Enforce' | 'Audit' => (mode === 'enforce' ? 'Enforce' : 'Audit');

function podSecurityRule(name: string, level: Level, mode: Mode, namespaces: { only?: string[]; except: string[] }): Record<string, unknown> {
  const resources = { kinds: ['Pod'], ...(namespaces.only === undefined ? {} : { namespaces: namespaces.only }) };
  return {
    name,
    match: { any: [{ resources }] },
    ...(namespaces.except.length === 0 ? {} : { exclude: { any: [{ resources: { namespaces: namespaces.except } }] } }),
    validate: {
      failureAction: failureAction(mode),
      message: `Pods must meet the Pod Security Standard "${level}".`,
      podSecurity: { level, version: 'latest' },
    },
  };
}

/**
 * Kyverno backs Pod Security Admission with the same levels per namespace
 * (a second, independent check that also covers pod controllers via autogen),
 * and refuses mutable image tags.
 */
export function kyvernoObjects(spec: ClusterSpec): Manifest[] {
  if (!spec.extensions.policyEngine.enabled) return [];
  const { defaultLevel, defaultMode, namespaces } = spec.podSecurity;
  const overrides = Object.entries(namespaces);
  const rules: Record<string, unknown>[] = [];
  // "privileged" allows everything, so it needs no rule.
  if (defaultLevel !== 'privileged') {
    rules.push(podSecurityRule(`default-${defaultLevel}`, defaultLevel, defaultMode, { except: [...SYSTEM_NAMESPACES, ...overrides.map(([name]) => name)] }));
  }
  for (const [name, { level, mode }] of overrides) {
    if (level !== 'privileged') rules.push(podSecurityRule(`namespace-${name}`, level, mode, { only: [name], except: [] }));
  }
  const policies: Manifest[] = [
    {
      apiVersion: 'kyverno.io/v1',
      kind: 'ClusterPolicy',
      metadata: { name: 'kiln-disallow-mutable-image-tags' },
      spec: {
        background: true,
        rules: [
          {
            name: 'require-image-tag',
            match: { any: [{ resources: { kinds: ['Pod'] } }] },
            validate: {
              failureAction: 'Enforce',
              message: 'Images must name a tag or digest.',
              pattern: { spec: { containers: [{ image: '*:*' }], '=(initContainers)': [{ image: '*:*' }], '=(ephemeralContainers)': [{ image: '*:*' }] } },
            },
          },
          {
            name: 'disallow-latest-tag',
            match: { any: [{ resources: { kinds: ['Pod'] } }] },
            validate: {
              failureAction: 'Enforce',
              message: 'The ":latest" tag is mutable; pin a version or digest.',
              pattern: { spec: { containers: [{ image: '!*:latest' }], '=(initContainers)': [{ image: '!*:latest' }], '=(ephemeralContainers)': [{ image: '!*:latest' }] } },
            },
          },
        ],
      },
    },
  ];
  if (rules.length > 0) {
    policies.unshift({ apiVersion: 'kyverno.io/v1', kind: 'ClusterPolicy', metadata: { name: 'kiln-pod-security' }, spec: { background: true, rules } });
  }
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE, labels: psaLabels('restricted', 'enforce') } },
    helmChart('kyverno', CHARTS.kyverno, {
      targetNamespace: NAMESPACE,
      values: {
        admissionController: { replicas: 3 },
        backgroundController: { replicas: 2 },
        cleanupController: { replicas: 2 },
        reportsController: { replicas: 2 },
      },
      readiness: {
        crds: ['clusterpolicies.kyverno.io'],
        workloads: [{ kind: 'Deployment', namespace: NAMESPACE, name: 'kyverno-admission-controller' }],
      },
    }),
    ...policies,
  ];
}
