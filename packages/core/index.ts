export * from './cluster-spec.ts';
export {
  ADDON_RELEASES,
  CIS_PROFILES,
  DEFAULT_KUBERNETES_VERSION,
  END_OF_LIFE_NOTICE_DAYS,
  KUBERNETES_RELEASES,
  addonsBehind,
  kubernetesReleaseOf,
  kubernetesSupport,
  kubernetesVersionProblem,
  offeredKubernetesReleases,
  offeredKubernetesSentence,
  versionSupportConditions,
  type AddonKey,
  type AddonRelease,
  type CisProfile,
  type CisProfileId,
  type KubernetesMinor,
  type KubernetesRange,
  type KubernetesRelease,
  type KubernetesSupport,
  type VersionSupportCondition,
} from './kubernetes-versions.ts';
export * from './errors.ts';
export * from './ids.ts';
export * from './order-rules.ts';
export * from './phases.ts';
export * from './resources.ts';
export * from './log.ts';
export * from './problem.ts';
export * from './merge-patch.ts';
export * from './ipv4.ts';
