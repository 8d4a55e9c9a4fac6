import type { ClusterSpec } from './cluster-spec.ts';
import { PSA_LEVELS, PSA_MODES } from './cluster-spec.ts';

export type PodSecurityLevel = (typeof PSA_LEVELS)[number];
export type PodSecurityMode = (typeof PSA_MODES)[number];
/** A level for each Pod Security Admission mode. */
export type PodSecurityLevels = Record<PodSecurityMode, PodSecurityLevel>;
type PodSecurityOrder = ClusterSpec['podSecurity'];
type NamespaceOverride = PodSecurityOrder['namespaces'][string];

/** Each mode's level as the shorthand (a level and how it applies) says: enforce sets all three, audit and warn only those two. */
function shorthand(level: PodSecurityLevel | undefined, mode: PodSecurityMode | undefined): Partial<PodSecurityLevels> {
  if (level === undefined) return {};
  return (mode ?? 'enforce') === 'enforce' ? { enforce: level, audit: level, warn: level } : { audit: level, warn: level };
}

/** The modes an order part sets on its own, which win over its shorthand. */
function ownLevels(levels: Partial<PodSecurityLevels>): Partial<PodSecurityLevels> {
  return Object.fromEntries(PSA_MODES.flatMap((mode) => (levels[mode] === undefined ? [] : [[mode, levels[mode]]])));
}

/**
 * The cluster-wide Pod Security levels: what every namespace without a label of its own is held to, by the API
 * servers' admission configuration. A mode the order does not set follows defaultLevel and defaultMode; a mode
 * defaultMode leaves out (enforce, under audit or warn) is privileged.
 */
export function podSecurityLevels(podSecurity: PodSecurityOrder): PodSecurityLevels {
  const levels = { ...shorthand(podSecurity.defaultLevel, podSecurity.defaultMode), ...ownLevels(podSecurity) };
  return { enforce: levels.enforce ?? 'privileged', audit: levels.audit ?? podSecurity.defaultLevel, warn: levels.warn ?? podSecurity.defaultLevel };
}

/** The levels a namespace override sets as labels; a mode it leaves out follows the cluster-wide level at admission. */
export function namespacePodSecurityLevels(override: NamespaceOverride): Partial<PodSecurityLevels> {
  return { ...shorthand(override.level, override.mode), ...ownLevels(override) };
}

/** Whether `a` is stricter than `b` (restricted over baseline over privileged). */
export function stricterLevel(a: PodSecurityLevel, b: PodSecurityLevel): boolean {
  return PSA_LEVELS.indexOf(a) > PSA_LEVELS.indexOf(b);
}
