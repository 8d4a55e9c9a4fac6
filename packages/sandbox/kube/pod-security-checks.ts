import { type JsonObject, arrayAt, isObject, objectAt, stringAt, stringMap, stringsAt } from './json.ts';

/**
 * The Pod Security Standards' checks at policy version `latest` (the v1.35 set), as kube-apiserver's PodSecurity
 * admission plugin runs them: kubernetes/kubernetes@v1.35.9 staging/src/k8s.io/pod-security-admission/policy/check_*.go,
 * read in its published copy kubernetes/pod-security-admission (release-1.35, unchanged from v0.35.0 to the branch's
 * head). Each check keeps upstream's forbidden reason and detail text, because the refusal a user reads is built from
 * them. Older pinned policy versions (which relaxed nothing a Kiln order uses, but differ for Windows and user-namespace
 * pods) are not played: the caller refuses them rather than evaluate them as `latest`.
 */

export type PodSecurityLevel = 'privileged' | 'baseline' | 'restricted';

export interface CheckResult {
  forbiddenReason: string;
  forbiddenDetail: string;
}

type Check = (metadata: JsonObject, spec: JsonObject) => CheckResult | undefined;

/** policy/helpers.go joinQuote: `"a", "b"`. */
function joinQuote(items: readonly string[]): string {
  return items.length === 0 ? '' : `"${items.join('", "')}"`;
}

function pluralize(singular: string, plural: string, count: number): string {
  return count === 1 ? singular : plural;
}

/** Go's sets.String List(): unique and sorted. */
function sortedSet(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}

/** Go's %q of a string, for the plain ASCII values pods carry. */
function quoted(value: string): string {
  return JSON.stringify(value);
}

/** policy/visitor.go visitContainers: init containers, then containers, then ephemeral containers. */
function containersOf(spec: JsonObject): JsonObject[] {
  return [...arrayAt(spec, 'initContainers'), ...arrayAt(spec, 'containers'), ...arrayAt(spec, 'ephemeralContainers')].filter(isObject);
}

function nameOf(container: JsonObject): string {
  return stringAt(container, 'name') ?? '';
}

function securityContextOf(object: JsonObject): JsonObject | undefined {
  return objectAt(object, 'securityContext');
}

/** policy/helpers.go relaxPolicyForUserNamespacePod: `hostUsers: false`. */
function inUserNamespace(spec: JsonObject): boolean {
  return spec.hostUsers === false;
}

function isWindows(spec: JsonObject): boolean {
  return stringAt(objectAt(spec, 'os'), 'name') === 'windows';
}

/** "container \"a\"" or "containers \"a\", \"b\"". */
function containersPhrase(names: readonly string[]): string {
  return `${pluralize('container', 'containers', names.length)} ${joinQuote(names)}`;
}

/** check_appArmorProfile.go (baseline, 1.0). */
const appArmorProfile: Check = (metadata, spec) => {
  const allowedType = (type: string | undefined) => type === 'RuntimeDefault' || type === 'Localhost';
  const badSetters: string[] = [];
  const badValues = new Set<string>();
  const podProfile = objectAt(securityContextOf(spec), 'appArmorProfile');
  if (podProfile !== undefined && !allowedType(stringAt(podProfile, 'type'))) {
    badSetters.push('pod');
    badValues.add(stringAt(podProfile, 'type') ?? '');
  }
  const badContainers: string[] = [];
  for (const container of containersOf(spec)) {
    const profile = objectAt(securityContextOf(container), 'appArmorProfile');
    if (profile !== undefined && !allowedType(stringAt(profile, 'type'))) {
      badContainers.push(nameOf(container));
      badValues.add(stringAt(profile, 'type') ?? '');
    }
  }
  if (badContainers.length > 0) badSetters.push(containersPhrase(badContainers));
  const forbiddenAnnotations = Object.entries(stringMap(metadata.annotations))
    .filter(([key, value]) => key.startsWith('container.apparmor.security.beta.kubernetes.io/') && !(value === '' || value === 'runtime/default' || value.startsWith('localhost/')))
    .map(([key, value]) => `${key}=${quoted(value)}`)
    .sort();
  const badValueList = [...sortedSet(badValues), ...forbiddenAnnotations];
  if (forbiddenAnnotations.length > 0) badSetters.push(pluralize('annotation', 'annotations', forbiddenAnnotations.length));
  if (badSetters.length === 0) return undefined;
  return {
    forbiddenReason: pluralize('forbidden AppArmor profile', 'forbidden AppArmor profiles', badValueList.length),
    forbiddenDetail: `${badSetters.join(' and ')} must not set AppArmor profile type to ${joinQuote(badValueList)}`,
  };
};

/** check_capabilities_baseline.go (baseline, 1.0): only the container runtime's default capabilities may be added. */
const BASELINE_CAPABILITIES = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);
const capabilitiesBaseline: Check = (_metadata, spec) => {
  const badContainers: string[] = [];
  const nonDefault: string[] = [];
  for (const container of containersOf(spec)) {
    const added = stringsAt(objectAt(securityContextOf(container), 'capabilities'), 'add');
    const forbidden = added.filter((capability) => !BASELINE_CAPABILITIES.has(capability));
    if (forbidden.length > 0) {
      badContainers.push(nameOf(container));
      nonDefault.push(...forbidden);
    }
  }
  if (badContainers.length === 0) return undefined;
  return {
    forbiddenReason: 'non-default capabilities',
    forbiddenDetail: `${containersPhrase(badContainers)} must not include ${joinQuote(sortedSet(nonDefault))} in securityContext.capabilities.add`,
  };
};

/** check_hostNamespaces.go (baseline, 1.0). */
const hostNamespaces: Check = (_metadata, spec) => {
  const shared = (['hostNetwork', 'hostPID', 'hostIPC'] as const).filter((field) => spec[field] === true).map((field) => `${field}=true`);
  return shared.length === 0 ? undefined : { forbiddenReason: 'host namespaces', forbiddenDetail: shared.join(', ') };
};

/** check_hostPathVolumes.go (baseline, 1.0). */
const hostPathVolumes: Check = (_metadata, spec) => {
  const volumes = arrayAt(spec, 'volumes').filter(isObject).filter((volume) => isObject(volume.hostPath)).map(nameOf);
  return volumes.length === 0 ? undefined : { forbiddenReason: 'hostPath volumes', forbiddenDetail: `${pluralize('volume', 'volumes', volumes.length)} ${joinQuote(volumes)}` };
};

/** check_hostPorts.go (baseline, 1.0). */
const hostPorts: Check = (_metadata, spec) => {
  const badContainers: string[] = [];
  const ports: string[] = [];
  for (const container of containersOf(spec)) {
    const used = arrayAt(container, 'ports')
      .filter(isObject)
      .map((port) => port.hostPort)
      .filter((port): port is number => typeof port === 'number' && port !== 0);
    if (used.length > 0) {
      badContainers.push(nameOf(container));
      ports.push(...used.map(String));
    }
  }
  if (badContainers.length === 0) return undefined;
  const forbidden = sortedSet(ports);
  return {
    forbiddenReason: 'hostPort',
    forbiddenDetail: `${containersPhrase(badContainers)} ${pluralize('uses', 'use', badContainers.length)} ${pluralize('hostPort', 'hostPorts', forbidden.length)} ${forbidden.join(', ')}`,
  };
};

/** check_hostProbesAndhostLifecycle.go (baseline, 1.34): probes and lifecycle handlers may not name a host. */
const hostProbesAndHostLifecycle: Check = (_metadata, spec) => {
  const badContainers = new Set<string>();
  const hosts = new Set<string>();
  const hostsOf = (handler: JsonObject | undefined) =>
    [stringAt(objectAt(handler, 'httpGet'), 'host'), stringAt(objectAt(handler, 'tcpSocket'), 'host')].filter((host): host is string => host !== undefined && host !== '');
  for (const container of containersOf(spec)) {
    const lifecycle = objectAt(container, 'lifecycle');
    const handlers = [objectAt(container, 'livenessProbe'), objectAt(container, 'readinessProbe'), objectAt(container, 'startupProbe'), objectAt(lifecycle, 'postStart'), objectAt(lifecycle, 'preStop')];
    for (const handler of handlers) {
      const found = hostsOf(handler);
      if (found.length === 0) continue;
      badContainers.add(nameOf(container));
      for (const host of found) hosts.add(host);
    }
  }
  if (badContainers.size === 0) return undefined;
  const containers = sortedSet(badContainers);
  return {
    forbiddenReason: 'probe or lifecycle host',
    forbiddenDetail: `${containersPhrase(containers)} ${pluralize('uses', 'use', containers.length)} ${pluralize('probe or lifecycle host', 'probe or lifecycle hosts', hosts.size)} ${joinQuote(sortedSet(hosts))}`,
  };
};

/** check_privileged.go (baseline, 1.0). */
const privileged: Check = (_metadata, spec) => {
  const badContainers = containersOf(spec)
    .filter((container) => securityContextOf(container)?.privileged === true)
    .map(nameOf);
  return badContainers.length === 0 ? undefined : { forbiddenReason: 'privileged', forbiddenDetail: `${containersPhrase(badContainers)} must not set securityContext.privileged=true` };
};

/** check_procMount_baseline.go procMount_1_0: only the Default proc mount. */
const procMountDefaultOnly: Check = (_metadata, spec) => {
  const badContainers: string[] = [];
  const types: string[] = [];
  for (const container of containersOf(spec)) {
    const procMount = stringAt(securityContextOf(container), 'procMount');
    if (procMount !== undefined && procMount !== 'Default') {
      badContainers.push(nameOf(container));
      types.push(procMount);
    }
  }
  if (badContainers.length === 0) return undefined;
  return { forbiddenReason: 'procMount', forbiddenDetail: `${containersPhrase(badContainers)} must not set securityContext.procMount to ${joinQuote(sortedSet(types))}` };
};

/** check_procMount_baseline.go procMount1_35baseline: a pod in a user namespace may unmask /proc. */
const procMountBaseline: Check = (metadata, spec) => (inUserNamespace(spec) ? undefined : procMountDefaultOnly(metadata, spec));

/** check_seLinuxOptions.go (baseline, 1.31). */
const SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);
const seLinuxOptions: Check = (_metadata, spec) => {
  const badTypes = new Set<string>();
  const set = { user: false, role: false };
  const valid = (options: JsonObject): boolean => {
    let ok = true;
    const type = stringAt(options, 'type') ?? '';
    if (!SELINUX_TYPES.has(type)) {
      ok = false;
      badTypes.add(type);
    }
    if ((stringAt(options, 'user') ?? '') !== '') {
      ok = false;
      set.user = true;
    }
    if ((stringAt(options, 'role') ?? '') !== '') {
      ok = false;
      set.role = true;
    }
    return ok;
  };
  const badSetters: string[] = [];
  const podOptions = objectAt(securityContextOf(spec), 'seLinuxOptions');
  if (podOptions !== undefined && !valid(podOptions)) badSetters.push('pod');
  const badContainers = containersOf(spec)
    .filter((container) => {
      const options = objectAt(securityContextOf(container), 'seLinuxOptions');
      return options !== undefined && !valid(options);
    })
    .map(nameOf);
  if (badContainers.length > 0) badSetters.push(containersPhrase(badContainers));
  if (badSetters.length === 0) return undefined;
  const types = sortedSet(badTypes);
  const badData = [
    ...(types.length > 0 ? [`${pluralize('type', 'types', types.length)} ${joinQuote(types)}`] : []),
    ...(set.user ? ['user may not be set'] : []),
    ...(set.role ? ['role may not be set'] : []),
  ];
  return { forbiddenReason: 'seLinuxOptions', forbiddenDetail: `${badSetters.join(' and ')} set forbidden securityContext.seLinuxOptions: ${badData.join('; ')}` };
};

const validSeccomp = (type: string | undefined) => type === 'Localhost' || type === 'RuntimeDefault';

/**
 * check_seccompProfile_baseline.go seccompProfileBaseline_1_19 and check_seccompProfile_restricted.go
 * seccompProfileRestricted_1_19: an explicit profile must be RuntimeDefault or Localhost; restricted also requires
 * one on the pod or every container.
 */
function seccompProfile(required: boolean): Check {
  return (_metadata, spec) => {
    const badSetters: string[] = [];
    const badValues = new Set<string>();
    const podProfile = objectAt(securityContextOf(spec), 'seccompProfile');
    let podSet = false;
    if (podProfile !== undefined) {
      if (validSeccomp(stringAt(podProfile, 'type'))) podSet = true;
      else {
        badSetters.push('pod');
        badValues.add(stringAt(podProfile, 'type') ?? '');
      }
    }
    const explicitlyBad: string[] = [];
    const implicitlyBad: string[] = [];
    for (const container of containersOf(spec)) {
      const profile = objectAt(securityContextOf(container), 'seccompProfile');
      if (profile !== undefined) {
        if (!validSeccomp(stringAt(profile, 'type'))) {
          explicitlyBad.push(nameOf(container));
          badValues.add(stringAt(profile, 'type') ?? '');
        }
      } else if (!podSet) {
        implicitlyBad.push(nameOf(container));
      }
    }
    if (explicitlyBad.length > 0) badSetters.push(containersPhrase(explicitlyBad));
    if (badSetters.length > 0) {
      return { forbiddenReason: 'seccompProfile', forbiddenDetail: `${badSetters.join(' and ')} must not set securityContext.seccompProfile.type to ${joinQuote(sortedSet(badValues))}` };
    }
    if (required && implicitlyBad.length > 0) {
      return {
        forbiddenReason: 'seccompProfile',
        forbiddenDetail: `pod or ${containersPhrase(implicitlyBad)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`,
      };
    }
    return undefined;
  };
}

/** check_sysctls.go sysctlsV1Dot32 (baseline). */
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
  'net.ipv4.tcp_rmem',
  'net.ipv4.tcp_wmem',
]);
const sysctls: Check = (_metadata, spec) => {
  const forbidden = arrayAt(securityContextOf(spec), 'sysctls')
    .filter(isObject)
    .map((sysctl) => stringAt(sysctl, 'name') ?? '')
    .filter((name) => !SAFE_SYSCTLS.has(name));
  return forbidden.length === 0 ? undefined : { forbiddenReason: 'forbidden sysctls', forbiddenDetail: forbidden.join(', ') };
};

/** check_windowsHostProcess.go (baseline, 1.0). */
const windowsHostProcess: Check = (_metadata, spec) => {
  const hostProcess = (object: JsonObject) => objectAt(securityContextOf(object), 'windowsOptions')?.hostProcess === true;
  const setters = [...(hostProcess(spec) ? ['pod'] : [])];
  const badContainers = containersOf(spec).filter(hostProcess).map(nameOf);
  if (badContainers.length > 0) setters.push(containersPhrase(badContainers));
  return setters.length === 0 ? undefined : { forbiddenReason: 'hostProcess', forbiddenDetail: `${setters.join(' and ')} must not set securityContext.windowsOptions.hostProcess=true` };
};

/** check_allowPrivilegeEscalation.go allowPrivilegeEscalation_1_25 (restricted). */
const allowPrivilegeEscalation: Check = (_metadata, spec) => {
  if (isWindows(spec)) return undefined;
  const badContainers = containersOf(spec)
    .filter((container) => securityContextOf(container)?.allowPrivilegeEscalation !== false)
    .map(nameOf);
  return badContainers.length === 0
    ? undefined
    : { forbiddenReason: 'allowPrivilegeEscalation != false', forbiddenDetail: `${containersPhrase(badContainers)} must set securityContext.allowPrivilegeEscalation=false` };
};

/** check_capabilities_restricted.go capabilitiesRestricted_1_25: drop ALL, add at most NET_BIND_SERVICE. */
const capabilitiesRestricted: Check = (_metadata, spec) => {
  if (isWindows(spec)) return undefined;
  const missingDropAll: string[] = [];
  const addingForbidden: string[] = [];
  const forbidden: string[] = [];
  for (const container of containersOf(spec)) {
    const capabilities = objectAt(securityContextOf(container), 'capabilities');
    if (capabilities === undefined) {
      missingDropAll.push(nameOf(container));
      continue;
    }
    if (!arrayAt(capabilities, 'drop').includes('ALL')) missingDropAll.push(nameOf(container));
    const added = arrayAt(capabilities, 'add').filter((value): value is string => typeof value === 'string' && value !== 'NET_BIND_SERVICE');
    if (added.length > 0) {
      addingForbidden.push(nameOf(container));
      forbidden.push(...added);
    }
  }
  const details = [
    ...(missingDropAll.length > 0 ? [`${containersPhrase(missingDropAll)} must set securityContext.capabilities.drop=["ALL"]`] : []),
    ...(addingForbidden.length > 0 ? [`${containersPhrase(addingForbidden)} must not include ${joinQuote(sortedSet(forbidden))} in securityContext.capabilities.add`] : []),
  ];
  return details.length === 0 ? undefined : { forbiddenReason: 'unrestricted capabilities', forbiddenDetail: details.join('; ') };
};

/** check_restrictedVolumes.go (restricted, 1.0): only volume types a pod cannot reach the host through. */
const ALLOWED_VOLUME_TYPES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'image', 'persistentVolumeClaim', 'projected', 'secret'];
const NAMED_VOLUME_TYPES = [
  'hostPath',
  'gcePersistentDisk',
  'awsElasticBlockStore',
  'gitRepo',
  'nfs',
  'iscsi',
  'glusterfs',
  'rbd',
  'flexVolume',
  'cinder',
  'cephfs',
  'flocker',
  'fc',
  'azureFile',
  'vsphereVolume',
  'quobyte',
  'azureDisk',
  'photonPersistentDisk',
  'portworxVolume',
  'scaleIO',
  'storageos',
];
const restrictedVolumes: Check = (_metadata, spec) => {
  const badVolumes: string[] = [];
  const badTypes: string[] = [];
  for (const volume of arrayAt(spec, 'volumes').filter(isObject)) {
    if (ALLOWED_VOLUME_TYPES.some((type) => isObject(volume[type]))) continue;
    badVolumes.push(nameOf(volume));
    badTypes.push(NAMED_VOLUME_TYPES.find((type) => isObject(volume[type])) ?? 'unknown');
  }
  if (badVolumes.length === 0) return undefined;
  const types = sortedSet(badTypes);
  return {
    forbiddenReason: 'restricted volume types',
    forbiddenDetail: `${pluralize('volume', 'volumes', badVolumes.length)} ${joinQuote(badVolumes)} ${pluralize('uses', 'use', badVolumes.length)} ${pluralize('restricted volume type', 'restricted volume types', types.length)} ${joinQuote(types)}`,
  };
};

/** check_runAsNonRoot.go runAsNonRoot1_35 (restricted). */
const runAsNonRoot: Check = (_metadata, spec) => {
  if (inUserNamespace(spec)) return undefined;
  const badSetters: string[] = [];
  const podValue = securityContextOf(spec)?.runAsNonRoot;
  if (podValue === false) badSetters.push('pod');
  const podNonRoot = podValue === true;
  const explicitlyBad: string[] = [];
  const implicitlyBad: string[] = [];
  for (const container of containersOf(spec)) {
    const value = securityContextOf(container)?.runAsNonRoot;
    if (typeof value === 'boolean') {
      if (!value) explicitlyBad.push(nameOf(container));
    } else if (!podNonRoot) {
      implicitlyBad.push(nameOf(container));
    }
  }
  if (explicitlyBad.length > 0) badSetters.push(containersPhrase(explicitlyBad));
  if (badSetters.length > 0) return { forbiddenReason: 'runAsNonRoot != true', forbiddenDetail: `${badSetters.join(' and ')} must not set securityContext.runAsNonRoot=false` };
  if (implicitlyBad.length > 0) return { forbiddenReason: 'runAsNonRoot != true', forbiddenDetail: `pod or ${containersPhrase(implicitlyBad)} must set securityContext.runAsNonRoot=true` };
  return undefined;
};

/** check_runAsUser.go runAsUser1_35 (restricted). */
const runAsUser: Check = (_metadata, spec) => {
  if (inUserNamespace(spec)) return undefined;
  const badSetters = [...(securityContextOf(spec)?.runAsUser === 0 ? ['pod'] : [])];
  const badContainers = containersOf(spec)
    .filter((container) => securityContextOf(container)?.runAsUser === 0)
    .map(nameOf);
  if (badContainers.length > 0) badSetters.push(containersPhrase(badContainers));
  return badSetters.length === 0 ? undefined : { forbiddenReason: 'runAsUser=0', forbiddenDetail: `${badSetters.join(' and ')} must not set runAsUser=0` };
};

/**
 * policy/registry.go: baseline checks by ID, sorted, then restricted ones; restricted runs every baseline check its
 * own checks do not override (capabilities_restricted overrides capabilities_baseline, procMount_restricted procMount,
 * restrictedVolumes hostPathVolumes, seccompProfile_restricted seccompProfile_baseline).
 */
const BASELINE: readonly [string, Check][] = [
  ['appArmorProfile', appArmorProfile],
  ['capabilities_baseline', capabilitiesBaseline],
  ['hostNamespaces', hostNamespaces],
  ['hostPathVolumes', hostPathVolumes],
  ['hostPorts', hostPorts],
  ['hostProbesAndHostLifecycle', hostProbesAndHostLifecycle],
  ['privileged', privileged],
  ['procMount', procMountBaseline],
  ['seLinuxOptions', seLinuxOptions],
  ['seccompProfile_baseline', seccompProfile(false)],
  ['sysctls', sysctls],
  ['windowsHostProcess', windowsHostProcess],
];
const RESTRICTED: readonly [string, Check][] = [
  ['allowPrivilegeEscalation', allowPrivilegeEscalation],
  ['capabilities_restricted', capabilitiesRestricted],
  ['procMount_restricted', procMountDefaultOnly],
  ['restrictedVolumes', restrictedVolumes],
  ['runAsNonRoot', runAsNonRoot],
  ['runAsUser', runAsUser],
  ['seccompProfile_restricted', seccompProfile(true)],
];
const OVERRIDDEN_BY_RESTRICTED = new Set(['capabilities_baseline', 'procMount', 'hostPathVolumes', 'seccompProfile_baseline']);

/** What a pod (or a pod template) breaks at a level, in upstream's order; empty when the level admits it. */
export function podSecurityViolations(level: PodSecurityLevel, metadata: JsonObject, spec: JsonObject): CheckResult[] {
  if (level === 'privileged') return [];
  const checks = level === 'baseline' ? BASELINE : [...BASELINE.filter(([id]) => !OVERRIDDEN_BY_RESTRICTED.has(id)), ...RESTRICTED];
  return checks.flatMap(([, check]) => {
    const result = check(metadata, spec);
    return result === undefined ? [] : [result];
  });
}

/** policy/checks.go AggregateCheckResult.ForbiddenDetail: `reason (detail), reason (detail)`. */
export function forbiddenDetail(results: readonly CheckResult[]): string {
  return results.map((result) => (result.forbiddenDetail === '' ? result.forbiddenReason : `${result.forbiddenReason} (${result.forbiddenDetail})`)).join(', ');
}
