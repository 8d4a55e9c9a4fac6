import { describe, expect, it } from 'vitest';
import { ClusterSpec } from '#core';
import { PLACEHOLDER_ISSUER_CA } from './cert-manager.ts';
import type { Manifest } from './kube.ts';
import { ACCESS_DIGEST_ANNOTATION, KILN_CONTROLLER, KILN_HEALTH, accessCurrent, accessObjects, roleOf } from './rbac.ts';
import { renderAddons } from './render.ts';

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
}

const rulesOf = (name: string): Rule[] => (accessObjects().find((object) => object.kind === 'ClusterRole' && object.metadata.name === name)?.rules ?? []) as Rule[];
const bindingOf = (name: string) => accessObjects().find((object) => object.kind === 'ClusterRoleBinding' && object.metadata.name === name);

/** Every add-on of an order with every extension on. */
function everyAddonObject(): Manifest[] {
  const spec = ClusterSpec.parse({ name: 'demo', region: 'eu-central-1', nodePools: [{ name: 'default', size: 2 }], extensions: { policyEngine: { enabled: true }, intrusionDetection: { enabled: true } } });
  return renderAddons('cls_rbac', spec, { issuerCa: PLACEHOLDER_ISSUER_CA }).flatMap((addon) => addon.objects);
}

describe('accessObjects', () => {
  it('binds the kubeconfig groups: kiln:admins to cluster-admin, kiln:viewers to view and to reading Nodes', () => {
    expect(bindingOf('kiln:admins')).toMatchObject({ roleRef: { kind: 'ClusterRole', name: 'cluster-admin' }, subjects: [{ kind: 'Group', name: 'kiln:admins' }] });
    expect(bindingOf('kiln:viewers')).toMatchObject({ roleRef: { kind: 'ClusterRole', name: 'view' }, subjects: [{ kind: 'Group', name: 'kiln:viewers' }] });
    expect(bindingOf('kiln:node-viewers')).toMatchObject({ roleRef: { name: 'kiln:node-viewer' }, subjects: [{ kind: 'Group', name: 'kiln:viewers' }] });
    expect(rulesOf('kiln:node-viewer')).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }]);
  });

  it("gives Kiln's steps no wildcard, no pods beyond listing and evicting, and bind or escalate only on the add-ons' own roles", () => {
    const rules = rulesOf(roleOf(KILN_CONTROLLER));
    expect(bindingOf(roleOf(KILN_CONTROLLER))).toMatchObject({ subjects: [{ kind: 'Group', name: KILN_CONTROLLER.group }] });
    expect(rules.flatMap((rule) => [...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...(rule.verbs ?? [])])).not.toContain('*');
    expect(rules.filter((rule) => rule.resources?.some((resource) => resource.startsWith('pods')))).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
      { apiGroups: [''], resources: ['pods/eviction'], verbs: ['create'] },
    ]);
    const delegating = rules.filter((rule) => rule.verbs?.some((verb) => verb === 'bind' || verb === 'escalate'));
    expect(delegating.every((rule) => (rule.resourceNames ?? []).length > 0)).toBe(true);
    expect(delegating.flatMap((rule) => rule.resourceNames ?? [])).not.toContain('cluster-admin');
  });

  it("lets Kiln's steps write every role and binding the add-ons render (escalate on the roles, bind on what bindings reference)", () => {
    const rbac = everyAddonObject().filter((object) => object.apiVersion.startsWith('rbac.authorization.k8s.io/'));
    expect(rbac.length).toBeGreaterThan(0);
    const named = (verb: string, resource: string) => rulesOf(roleOf(KILN_CONTROLLER)).filter((rule) => rule.verbs?.includes(verb) && rule.resources?.includes(resource)).flatMap((rule) => rule.resourceNames ?? []);
    for (const object of rbac) {
      if (object.kind === 'ClusterRole' || object.kind === 'Role') expect(named('escalate', object.kind === 'Role' ? 'roles' : 'clusterroles')).toContain(object.metadata.name);
      const roleRef = object.roleRef as { kind?: string; name?: string } | undefined;
      if (roleRef !== undefined) expect(named('bind', roleRef.kind === 'Role' ? 'roles' : 'clusterroles')).toContain(roleRef.name);
    }
  });

  it('lets the health poller list Nodes and read its own role, nothing else', () => {
    expect(rulesOf(roleOf(KILN_HEALTH))).toEqual([
      { apiGroups: [''], resources: ['nodes'], verbs: ['list'] },
      { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], verbs: ['get'], resourceNames: [roleOf(KILN_HEALTH)] },
    ]);
  });

  it('marks Kiln’s roles with the rendering, so a cluster holding another one is told apart', () => {
    const [controller] = accessObjects();
    expect(accessCurrent(controller ?? {})).toBe(true);
    expect(accessCurrent({ metadata: { annotations: { [ACCESS_DIGEST_ANNOTATION]: 'older' } } })).toBe(false);
    expect(accessCurrent({})).toBe(false);
  });
});
