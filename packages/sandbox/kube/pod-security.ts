import { parse } from 'yaml';
import { type JsonObject, arrayAt, isObject, objectAt, stringAt, stringMap, toJson, stringsAt } from './json.ts';
import { type PodSecurityLevel, forbiddenDetail, podSecurityViolations } from './pod-security-checks.ts';
import { type StatusCause, KubeApiError, invalid } from './status.ts';

/**
 * kube-apiserver's PodSecurity admission plugin, as kubernetes/kubernetes@v1.35.9 runs it
 * (plugin/pkg/admission/security/podsecurity/admission.go around
 * staging/src/k8s.io/pod-security-admission/admission/admission.go; the library read in its published copy
 * kubernetes/pod-security-admission, release-1.35). Its configuration is read once, when the API server starts:
 * the AdmissionConfiguration named by --admission-control-config-file (staging/src/k8s.io/apiserver/pkg/admission/
 * config.go ReadAdmissionConfiguration), whose PodSecurity plugin entry carries a PodSecurityConfiguration inline or
 * by path (podsecurityconfigloader LoadFromReader in newPlugin). Changing the file on disk changes nothing until the
 * next start. Without one, every default is privileged (admission/api/v1/defaults.go).
 *
 * Not played: exemptions by user name (the sandbox does not know who calls; it exempts no one, never more than
 * upstream), the warnings about existing pods when a namespace's enforce label tightens, and policy versions other
 * than `latest` (refused loudly rather than evaluated as `latest`).
 */

const LEVELS: readonly PodSecurityLevel[] = ['privileged', 'baseline', 'restricted'];
const MODES = ['enforce', 'audit', 'warn'] as const;
type Mode = (typeof MODES)[number];
const LABEL_PREFIX = 'pod-security.kubernetes.io/';

interface LevelVersion {
  level: PodSecurityLevel;
  version: string;
}
type Policy = Record<Mode, LevelVersion>;

interface PodSecurityConfiguration {
  defaults: Policy;
  exemptions: { namespaces: string[]; runtimeClasses: string[]; usernames: string[] };
}

const PRIVILEGED: LevelVersion = { level: 'privileged', version: 'latest' };
const UNCONFIGURED: PodSecurityConfiguration = {
  defaults: { enforce: PRIVILEGED, audit: PRIVILEGED, warn: PRIVILEGED },
  exemptions: { namespaces: [], runtimeClasses: [], usernames: [] },
};

/** api/helpers.go LevelVersion.String. */
function policyName(levelVersion: LevelVersion): string {
  return `${levelVersion.level}:${levelVersion.version}`;
}

function compareLevels(a: PodSecurityLevel, b: PodSecurityLevel): number {
  return LEVELS.indexOf(a) - LEVELS.indexOf(b);
}

/** api/helpers.go ParseLevel. */
function parseLevel(value: string): PodSecurityLevel | undefined {
  return LEVELS.find((level) => level === value);
}

const LEVEL_PROBLEM = `must be one of ${LEVELS.join(', ')}`;
const VERSION_PROBLEM = 'must be "latest" or "v1.x"';

/** api/helpers.go ParseVersion: `latest` or `v1.<minor>`. */
function validVersion(value: string): boolean {
  return value === 'latest' || /^v1\.([0-9]|[1-9][0-9]*)$/.test(value);
}

/**
 * The policy version the checks are played at. policy/registry.go evaluates `latest` and any version past its newest
 * checks' (v1.35) with the newest checks; an older pinned version has checks of its own the sandbox does not play.
 */
function playedVersion(version: string): void {
  const minor = /^v1\.(\d+)$/.exec(version)?.[1];
  if (version === 'latest' || (minor !== undefined && Number(minor) >= 35)) return;
  throw new KubeApiError(500, 'InternalError', `Internal error occurred: the sandbox plays the Pod Security checks of policy version latest (v1.35) only, not ${version}`);
}

/** admission/api/validation/validation.go and admission/api/helpers.go ToPolicy, after v1 defaulting. */
function parsePodSecurityConfiguration(document: unknown): PodSecurityConfiguration {
  if (!isObject(document)) throw new Error('PodSecurity configuration error: the plugin configuration is not an object');
  const apiVersion = stringAt(document, 'apiVersion');
  const kind = stringAt(document, 'kind');
  if (kind !== 'PodSecurityConfiguration' || !['pod-security.admission.config.k8s.io/v1', 'pod-security.admission.config.k8s.io/v1beta1'].includes(apiVersion ?? '')) {
    throw new Error(`no kind "${kind ?? ''}" is registered for version "${apiVersion ?? ''}"`);
  }
  const defaults = objectAt(document, 'defaults') ?? {};
  const problems: string[] = [];
  const policy = {} as Policy;
  for (const mode of MODES) {
    const level = stringAt(defaults, mode) ?? '';
    const version = stringAt(defaults, `${mode}-version`) ?? '';
    const parsed = parseLevel(level === '' ? 'privileged' : level);
    if (parsed === undefined) problems.push(`defaults.${mode}: Invalid value: ${JSON.stringify(level)}: ${LEVEL_PROBLEM}`);
    if (!validVersion(version === '' ? 'latest' : version)) problems.push(`defaults.${mode}-version: Invalid value: ${JSON.stringify(version)}: ${VERSION_PROBLEM}`);
    policy[mode] = { level: parsed ?? 'restricted', version: version === '' ? 'latest' : version };
  }
  const exemptions = objectAt(document, 'exemptions') ?? {};
  const listed = (field: string, valid: RegExp) => {
    const values = stringsAt(exemptions, field);
    values.forEach((value, index) => {
      if (!valid.test(value)) problems.push(`exemptions.${field}[${String(index)}]: Invalid value: ${JSON.stringify(value)}`);
      else if (values.indexOf(value) !== index) problems.push(`exemptions.${field}[${String(index)}]: Duplicate value: ${JSON.stringify(value)}`);
    });
    return values;
  };
  const configuration: PodSecurityConfiguration = {
    defaults: policy,
    exemptions: {
      namespaces: listed('namespaces', /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/),
      runtimeClasses: listed('runtimeClasses', /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/),
      usernames: listed('usernames', /^.+$/),
    },
  };
  if (problems.length > 0) throw new Error(`PodSecurity invalid: [${problems.join(', ')}]`);
  for (const mode of MODES) playedVersion(policy[mode].version);
  return configuration;
}

/**
 * The PodSecurity configuration an API server loads at start from its AdmissionConfiguration (the parsed file, or
 * undefined without --admission-control-config-file); `readFile` reads a plugin configuration named by `path`, relative
 * to the directory of `configPath`. Throws what stops kube-apiserver from starting.
 */
export function loadPodSecurityConfiguration(admission: unknown, configPath: string, readFile: (path: string) => string | undefined): PodSecurityConfiguration {
  if (admission === undefined) return UNCONFIGURED;
  if (!isObject(admission) || stringAt(admission, 'kind') !== 'AdmissionConfiguration' || !['apiserver.config.k8s.io/v1', 'apiserver.config.k8s.io/v1alpha1', 'apiserver.k8s.io/v1alpha1'].includes(stringAt(admission, 'apiVersion') ?? '')) {
    throw new Error(`unable to read admission control configuration from "${configPath}": not an AdmissionConfiguration`);
  }
  const plugin = arrayAt(admission, 'plugins').filter(isObject).find((entry) => stringAt(entry, 'name') === 'PodSecurity');
  if (plugin === undefined) return UNCONFIGURED;
  const inline = objectAt(plugin, 'configuration');
  if (inline !== undefined) return parsePodSecurityConfiguration(inline);
  const path = stringAt(plugin, 'path');
  if (path === undefined || path === '') return UNCONFIGURED;
  const absolute = path.startsWith('/') ? path : `${configPath.slice(0, configPath.lastIndexOf('/'))}/${path}`;
  const text = readFile(absolute);
  if (text === undefined) throw new Error(`Couldn't open admission plugin configuration ${absolute}: no such file or directory`);
  return parsePodSecurityConfiguration(toJson(parse(text)));
}

/** api/helpers.go PolicyToEvaluate: the namespace's labels over the defaults; invalid labels give field errors. */
function policyToEvaluate(labels: Record<string, string>, defaults: Policy): { policy: Policy; errors: StatusCause[] } {
  const policy: Policy = { enforce: { ...defaults.enforce }, audit: { ...defaults.audit }, warn: { ...defaults.warn } };
  const errors: StatusCause[] = [];
  const problem = (label: string, value: string, detail: string) =>
    errors.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${detail}`, field: `metadata.labels[${label}]` });
  let hasEnforceLevel = false;
  let hasWarnLevel = false;
  let hasWarnVersion = false;
  for (const mode of MODES) {
    const levelLabel = `${LABEL_PREFIX}${mode}`;
    const versionLabel = `${levelLabel}-version`;
    const level = labels[levelLabel];
    if (level !== undefined) {
      const parsed = parseLevel(level);
      if (parsed === undefined) problem(levelLabel, level, LEVEL_PROBLEM);
      // An invalid enforce label enforces restricted; invalid audit and warn labels fail open (privileged).
      policy[mode].level = parsed ?? (mode === 'enforce' ? 'restricted' : 'privileged');
      if (mode === 'enforce') hasEnforceLevel = parsed !== undefined;
      if (mode === 'warn') hasWarnLevel = true;
    }
    const version = labels[versionLabel];
    if (version !== undefined) {
      if (!validVersion(version)) problem(versionLabel, version, VERSION_PROBLEM);
      policy[mode].version = validVersion(version) ? version : 'latest';
      if (mode === 'warn') hasWarnVersion = true;
    }
  }
  // A namespace that enforces a stricter level than the default warn level warns at it too.
  if (!hasWarnLevel && hasEnforceLevel && compareLevels(policy.enforce.level, policy.warn.level) > 0) {
    policy.warn.level = policy.enforce.level;
    if (!hasWarnVersion) policy.warn.version = policy.enforce.version;
  }
  return { policy, errors };
}

function evaluate(levelVersion: LevelVersion, metadata: JsonObject, spec: JsonObject) {
  if (levelVersion.level === 'privileged') return [];
  playedVersion(levelVersion.version);
  return podSecurityViolations(levelVersion.level, metadata, spec);
}

/** What an admitted request leaves behind: warnings for the client and annotations on its audit event. */
export interface AdmissionOutcome {
  warnings: string[];
  auditAnnotations: Record<string, string>;
}

export interface PodSecurityRequest {
  operation: 'create' | 'update';
  /** The resource as the API names it: `pods`, `namespaces`, `deployments`, ... with its group. */
  group: string;
  resource: string;
  /** Status writes are never checked. */
  subresource: 'main' | 'status';
  namespace: string;
  name: string;
  object: JsonObject;
  previous: JsonObject | undefined;
  /** The labels of the request's namespace (pods and their controllers). */
  namespaceLabels: () => Record<string, string>;
}

const WORKLOADS: Readonly<Record<string, (object: JsonObject) => JsonObject | undefined>> = {
  '/replicationcontrollers': (object) => objectAt(objectAt(object, 'spec'), 'template'),
  '/podtemplates': (object) => objectAt(object, 'template'),
  'apps/replicasets': (object) => objectAt(objectAt(object, 'spec'), 'template'),
  'apps/deployments': (object) => objectAt(objectAt(object, 'spec'), 'template'),
  'apps/statefulsets': (object) => objectAt(objectAt(object, 'spec'), 'template'),
  'apps/daemonsets': (object) => objectAt(objectAt(object, 'spec'), 'template'),
  'batch/jobs': (object) => objectAt(objectAt(object, 'spec'), 'template'),
  'batch/cronjobs': (object) => objectAt(objectAt(objectAt(objectAt(object, 'spec'), 'jobTemplate'), 'spec'), 'template'),
};

/** admission.go isSignificantPodUpdate: only a changed image or an added container is checked again. */
function significantPodUpdate(pod: JsonObject, previous: JsonObject): boolean {
  const images = (object: JsonObject, field: string) => arrayAt(objectAt(object, 'spec'), field).filter(isObject);
  for (const field of ['containers', 'initContainers']) {
    const now = images(pod, field);
    const before = images(previous, field);
    if (now.length !== before.length || now.some((container, index) => stringAt(container, 'image') !== stringAt(before[index], 'image'))) return true;
  }
  const before = images(previous, 'ephemeralContainers');
  return images(pod, 'ephemeralContainers').some((container) => {
    const earlier = before.find((candidate) => stringAt(candidate, 'name') === stringAt(container, 'name'));
    return earlier === undefined || stringAt(earlier, 'image') !== stringAt(container, 'image');
  });
}

/** One API server's PodSecurity plugin, with the configuration it loaded at its start. */
export class PodSecurityAdmission {
  private configuration: PodSecurityConfiguration = UNCONFIGURED;

  /** A (re)started API server's configuration, from loadPodSecurityConfiguration. */
  configure(configuration: PodSecurityConfiguration): void {
    this.configuration = configuration;
  }

  /** The defaults in force, for tests: `enforce=restricted:latest, ...`. */
  describeDefaults(): string {
    return MODES.map((mode) => `${mode}=${policyName(this.configuration.defaults[mode])}`).join(', ');
  }

  /**
   * admission.go Validate for one write: refuses it (a thrown Status: 403 for a pod below the enforce level, 422 for
   * invalid namespace labels) or admits it with its warnings and audit annotations.
   */
  admit(request: PodSecurityRequest): AdmissionOutcome {
    const allowed: AdmissionOutcome = { warnings: [], auditAnnotations: {} };
    if (request.subresource !== 'main') return allowed;
    const key = `${request.group}/${request.resource}`;
    if (key === '/namespaces') return this.admitNamespace(request);
    if (key === '/pods') {
      if (request.operation === 'update' && request.previous !== undefined && !significantPodUpdate(request.object, request.previous)) return allowed;
      return this.admitPod(request, objectAt(request.object, 'metadata') ?? {}, objectAt(request.object, 'spec') ?? {}, true);
    }
    const template = WORKLOADS[key];
    if (template === undefined) return allowed;
    const podTemplate = template(request.object);
    if (podTemplate === undefined) return allowed;
    return this.admitPod(request, objectAt(podTemplate, 'metadata') ?? {}, objectAt(podTemplate, 'spec') ?? {}, false);
  }

  private exempt(namespace: string): boolean {
    return namespace !== '' && this.configuration.exemptions.namespaces.includes(namespace);
  }

  /** admission.go ValidateNamespace: labels must parse on create, and on an update that changes what they say. */
  private admitNamespace(request: PodSecurityRequest): AdmissionOutcome {
    const { errors } = policyToEvaluate(stringMap(objectAt(request.object, 'metadata')?.labels), this.configuration.defaults);
    if (errors.length === 0) return { warnings: [], auditAnnotations: {} };
    if (request.operation === 'update' && request.previous !== undefined) {
      const before = policyToEvaluate(stringMap(objectAt(request.previous, 'metadata')?.labels), this.configuration.defaults).errors;
      if (JSON.stringify(before) === JSON.stringify(errors)) return { warnings: [], auditAnnotations: {} };
    }
    throw invalid('Namespace', request.name, errors);
  }

  /** admission.go ValidatePod / ValidatePodController and EvaluatePod. */
  private admitPod(request: PodSecurityRequest, metadata: JsonObject, spec: JsonObject, enforce: boolean): AdmissionOutcome {
    if (this.exempt(request.namespace)) return { warnings: [], auditAnnotations: { [`${LABEL_PREFIX}exempt`]: 'namespace' } };
    const { policy, errors } = policyToEvaluate(request.namespaceLabels(), this.configuration.defaults);
    // A pod is let through unchecked when every mode is privileged; a workload (never enforced) when audit and warn are.
    const unchecked = policy.audit.level === 'privileged' && policy.warn.level === 'privileged' && (!enforce || policy.enforce.level === 'privileged');
    if (errors.length === 0 && unchecked) {
      return { warnings: [], auditAnnotations: enforce ? { [`${LABEL_PREFIX}enforce-policy`]: policyName(PRIVILEGED) } : {} };
    }
    const runtimeClass = stringAt(spec, 'runtimeClassName') ?? '';
    if (runtimeClass !== '' && this.configuration.exemptions.runtimeClasses.includes(runtimeClass)) {
      return { warnings: [], auditAnnotations: { [`${LABEL_PREFIX}exempt`]: 'runtimeClass' } };
    }
    const auditAnnotations: Record<string, string> = {};
    if (errors.length > 0) auditAnnotations[`${LABEL_PREFIX}error`] = `Failed to parse policy: [${errors.map((error) => `${error.field ?? ''}: ${error.message}`).join(', ')}]`;
    if (enforce) {
      auditAnnotations[`${LABEL_PREFIX}enforce-policy`] = policyName(policy.enforce);
      const violations = evaluate(policy.enforce, metadata, spec);
      if (violations.length > 0) {
        const resource = request.group === '' ? request.resource : `${request.resource}.${request.group}`;
        throw new KubeApiError(403, 'Forbidden', `${resource} "${request.name}" is forbidden: violates PodSecurity "${policyName(policy.enforce)}": ${forbiddenDetail(violations)}`, {
          name: request.name,
          kind: request.resource,
          ...(request.group === '' ? {} : { group: request.group }),
        });
      }
    }
    const audited = evaluate(policy.audit, metadata, spec);
    if (audited.length > 0) auditAnnotations[`${LABEL_PREFIX}audit-violations`] = `would violate PodSecurity "${policyName(policy.audit)}": ${forbiddenDetail(audited)}`;
    const warned = evaluate(policy.warn, metadata, spec);
    const warnings = warned.length > 0 ? [`would violate PodSecurity "${policyName(policy.warn)}": ${forbiddenDetail(warned)}`] : [];
    return { warnings, auditAnnotations };
  }
}
