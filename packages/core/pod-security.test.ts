import { describe, expect, it } from 'vitest';
import { ClusterSpec } from './cluster-spec.ts';
import { orderProblems } from './order-rules.ts';
import { namespacePodSecurityLevels, podSecurityLevels } from './pod-security.ts';

const order = (podSecurity: unknown) => ClusterSpec.parse({ name: 'psa', region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }], podSecurity });

describe('the cluster-wide Pod Security levels', () => {
  it.each([
    ['nothing: restricted everywhere', undefined, { enforce: 'restricted', audit: 'restricted', warn: 'restricted' }],
    ['the shorthand in enforce mode', { defaultLevel: 'baseline' }, { enforce: 'baseline', audit: 'baseline', warn: 'baseline' }],
    ['the shorthand in audit mode: nothing enforced', { defaultLevel: 'baseline', defaultMode: 'audit' }, { enforce: 'privileged', audit: 'baseline', warn: 'baseline' }],
    ['a stricter warn level than enforce', { enforce: 'baseline', warn: 'restricted' }, { enforce: 'baseline', audit: 'restricted', warn: 'restricted' }],
    ['each mode on its own over the shorthand', { defaultLevel: 'privileged', defaultMode: 'warn', enforce: 'baseline', audit: 'restricted' }, { enforce: 'baseline', audit: 'restricted', warn: 'privileged' }],
    ['a looser warn level than enforce, as Kubernetes takes it', { enforce: 'restricted', warn: 'privileged' }, { enforce: 'restricted', audit: 'restricted', warn: 'privileged' }],
  ])('%s', (_case, podSecurity, levels) => {
    expect(podSecurityLevels(order(podSecurity).podSecurity)).toEqual(levels);
  });
});

describe("a namespace's own Pod Security levels", () => {
  it('sets only the modes the override names, so the others follow the cluster-wide levels', () => {
    const { namespaces } = order({ namespaces: { legacy: { level: 'baseline' }, watched: { level: 'baseline', mode: 'warn' }, strict: { enforce: 'baseline', warn: 'restricted' }, mixed: { level: 'privileged', audit: 'restricted' } } }).podSecurity;
    expect(Object.fromEntries(Object.entries(namespaces).map(([name, override]) => [name, namespacePodSecurityLevels(override)]))).toEqual({
      legacy: { enforce: 'baseline', audit: 'baseline', warn: 'baseline' },
      watched: { audit: 'baseline', warn: 'baseline' },
      strict: { enforce: 'baseline', warn: 'restricted' },
      mixed: { enforce: 'privileged', audit: 'restricted', warn: 'privileged' },
    });
  });

  it('must set a level, and a mode only says how its level applies', () => {
    const problems = orderProblems(order({ namespaces: { empty: {}, 'mode-only': { mode: 'audit' } } }));
    expect(problems.filter((problem) => problem.pointer.startsWith('/podSecurity'))).toEqual([
      { pointer: '/podSecurity/namespaces/empty', detail: 'sets no level: give level, or enforce, audit or warn' },
      { pointer: '/podSecurity/namespaces/mode-only', detail: 'sets no level: give level, or enforce, audit or warn' },
      { pointer: '/podSecurity/namespaces/mode-only/mode', detail: 'says how level applies, and level is not given' },
    ]);
  });

  it('keeps an order stored before per-mode levels existed meaning what it meant', () => {
    const stored = ClusterSpec.parse({ ...order(undefined), podSecurity: { defaultLevel: 'baseline', defaultMode: 'warn', namespaces: { legacy: { level: 'restricted', mode: 'enforce' } } } });
    expect(podSecurityLevels(stored.podSecurity)).toEqual({ enforce: 'privileged', audit: 'baseline', warn: 'baseline' });
    expect(namespacePodSecurityLevels(stored.podSecurity.namespaces.legacy ?? {})).toEqual({ enforce: 'restricted', audit: 'restricted', warn: 'restricted' });
  });
});
