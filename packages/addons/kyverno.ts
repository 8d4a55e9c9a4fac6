import { type ClusterSpec, type PodSecurityLevel, namespacePodSecurityLevels, podSecurityLevels, stricterLevel } from '#core';
import { SYSTEM_NAMESPACES, psaLabelsAt } from './baseline.ts';
import { CHARTS, helmChart } from './charts.ts';
import type { Manifest } from './kube.ts';

const NAMESPACE = 'kyverno';

function podSecurityRule(name: string, level: PodSecurityLevel, failureAction: 'Enforce' | 'Audit', namespaces: { only?: string[]; except: string[] }): Record<string, unknown> {
  const resources = { kinds: ['Pod'], ...(namespaces.only === undefined ? {} : { namespaces: namespaces.only }) };
  return {
    name,
    match: { any: [{ resources }] },
    ...(namespaces.except.length === 0 ? {} : { exclude: { any: [{ resources: { namespaces: namespaces.except } }] } }),
    validate: {
      failureAction,
      message: `Pods must meet the Pod Security Standard "${level}".`,
      podSecurity: { level, version: 'latest' },
    },
  };
}

/**
 * The rules for one set of namespaces: the enforce level refused (privileged allows everything, so it needs no rule),
 * and an audit level stricter than it reported. Kyverno has no warn mode; Pod Security Admission warns.
 */
function podSecurityRules(name: string, enforce: PodSecurityLevel, audit: PodSecurityLevel, namespaces: { only?: string[]; except: string[] }): Record<string, unknown>[] {
  return [
    ...(enforce === 'privileged' ? [] : [podSecurityRule(name, enforce, 'Enforce', namespaces)]),
    ...(stricterLevel(audit, enforce) ? [podSecurityRule(`${name}-audit-${audit}`, audit, 'Audit', namespaces)] : []),
  ];
}

/**
 * Kyverno backs Pod Security Admission with the same levels per namespace
 * (a second, independent check that also covers pod controllers via autogen),
 * and refuses mutable image tags.
 */
export function kyvernoObjects(spec: ClusterSpec): Manifest[] {
  if (!spec.extensions.policyEngine.enabled) return [];
  const defaults = podSecurityLevels(spec.podSecurity);
  const overrides = Object.entries(spec.podSecurity.namespaces);
  const rules: Record<string, unknown>[] = podSecurityRules(`default-${defaults.enforce}`, defaults.enforce, defaults.audit, { except: [...SYSTEM_NAMESPACES, ...overrides.map(([name]) => name)] });
  for (const [name, override] of overrides) {
    // A mode the namespace does not set follows the cluster-wide level, as admission resolves it.
    const levels = { ...defaults, ...namespacePodSecurityLevels(override) };
    rules.push(...podSecurityRules(`namespace-${name}`, levels.enforce, levels.audit, { only: [name], except: [] }));
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
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE, labels: psaLabelsAt('restricted') } },
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
