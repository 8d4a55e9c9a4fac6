import { gunzipSync } from 'node:zlib';
import AjvDraft04 from 'ajv-draft-04';
import { parse, parseAllDocuments } from 'yaml';
import { isRecord } from '#core';
import { type BootProcedure, bootProcedureOf } from '../boot-procedure.ts';
import type { JoinSpec } from '../kubeadm-join.ts';
import schema from './schema-cloud-config-v1.json' with { type: 'json' };

/**
 * What a sandbox machine checks before it "boots": its user data must be a
 * #cloud-config that cloud-init's own JSON schema accepts. The schema is the
 * one the machines' cloud-init ships (Debian 13's 25.1.4, see NOTICE), so
 * `npm start` needs no Python; the tests also run the real `cloud-init schema`
 * installed here.
 */
const ajv = new AjvDraft04({ allErrors: true, strict: false, logger: false });
const validateSchema = ajv.compile(schema);

/** EC2's limit on user data, in raw form, before base64 (docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html). */
export const USER_DATA_LIMIT_BYTES = 16_384;

/** A launch template's user data as EC2 holds it: base64 decoded, the bytes the instance is given. */
export function userDataBytes(encoded: unknown): Buffer {
  return typeof encoded === 'string' ? Buffer.from(encoded, 'base64') : Buffer.alloc(0);
}

/**
 * The text cloud-init reads from user data: gzip-compressed data is decompressed first
 * (canonical/cloud-init@25.1.4 cloudinit/user_data.py convert_string: `util.decomp_gzip(bdata, decode=False)`).
 */
export function userDataText(encoded: unknown): string {
  const bytes = userDataBytes(encoded);
  const gzipped = bytes.length > 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
  return (gzipped ? gunzipSync(bytes) : bytes).toString('utf8');
}

/** `read`, answered from the last 256 texts it read: its results are only read, never changed. */
function byUserData<T>(read: (userData: string) => T): (userData: string) => T {
  const kept = new Map<string, T>();
  return (userData) => {
    if (kept.has(userData)) return kept.get(userData) as T;
    const result = read(userData);
    if (kept.size >= 256) kept.delete(kept.keys().next().value ?? '');
    kept.set(userData, result);
    return result;
  };
}

/**
 * User data as YAML, parsed once: every machine of a group boots from the same text, and each boot reads it several
 * times (its schema, its Kubernetes release, its files).
 */
const parseUserData = byUserData((userData): { document: unknown } | { error: string } => {
  try {
    return { document: parse(userData) as unknown };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
});

export function cloudConfigProblems(userData: string): string[] {
  if (!userData.startsWith('#cloud-config\n')) return ['user data does not start with #cloud-config'];
  const parsed = parseUserData(userData);
  if ('error' in parsed) return [`user data is not YAML: ${parsed.error}`];
  if (validateSchema(parsed.document)) return [];
  return (validateSchema.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message ?? 'is invalid'}`);
}

/**
 * The Kubernetes release a machine installs, as its user data pins it
 * (`apt-get install … kubelet=1.35.9-1.1 …` in a script cloud-init writes):
 * what the machine would run, whatever the order said.
 */
export function installedKubernetesRelease(userData: string): string | undefined {
  const parsed = parseUserData(userData);
  if ('error' in parsed) return undefined;
  const document = parsed.document;
  const files = typeof document === 'object' && document !== null && 'write_files' in document && Array.isArray(document.write_files) ? (document.write_files as unknown[]) : [];
  for (const file of files) {
    const content = typeof file === 'object' && file !== null && 'content' in file && typeof file.content === 'string' ? file.content : '';
    const pin = /apt-get install\b[^\n]*\bkubelet=(\d+\.\d+\.\d+)-[\w.]+/.exec(content);
    if (pin?.[1] !== undefined) return `v${pin[1]}`;
  }
  return undefined;
}

/** The files cloud-init writes, with their path, content and mode. */
function writtenFiles(userData: string): { path: string; content: string; permissions: string }[] {
  const parsed = parseUserData(userData);
  if ('error' in parsed) return [];
  const document = parsed.document;
  const files = typeof document === 'object' && document !== null && 'write_files' in document && Array.isArray(document.write_files) ? (document.write_files as unknown[]) : [];
  return files.map((file) => {
    const field = (name: string) => (isRecord(file) && typeof file[name] === 'string' ? file[name] : '');
    return { path: field('path'), content: field('content'), permissions: field('permissions') };
  });
}

/** The script cloud-init writes and runs: the boot procedure of a Kiln machine. */
function bootScript(userData: string): string {
  return writtenFiles(userData)
    .map((file) => file.content)
    .join('\n');
}

/** The labels and taints a kubelet registers its Node with, as kubeadm's JoinConfiguration tells it. */
export interface NodeRegistrationOf {
  labels: Record<string, string>;
  taints: { key: string; value?: string; effect: string }[];
}

/**
 * The `nodeRegistration` of the JoinConfiguration a machine's user data writes: its kubelet's `--node-labels`
 * (`key=value,…`) and the taints it registers with. Undefined without one.
 */
function nodeRegistrationOf(userData: string): NodeRegistrationOf | undefined {
  for (const file of writtenFiles(userData)) {
    for (const document of parseAllDocuments(file.content)) {
      const value: unknown = document.errors.length > 0 ? undefined : document.toJS();
      if (!isRecord(value) || value.kind !== 'JoinConfiguration' || !isRecord(value.nodeRegistration)) continue;
      const registration = value.nodeRegistration;
      const extraArgs = Array.isArray(registration.kubeletExtraArgs) ? (registration.kubeletExtraArgs as unknown[]) : [];
      const nodeLabels = extraArgs.find((arg): arg is { name: string; value: string } => isRecord(arg) && arg.name === 'node-labels' && typeof arg.value === 'string')?.value ?? '';
      const labels = Object.fromEntries(
        nodeLabels
          .split(',')
          .filter((pair) => pair.includes('='))
          .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
      );
      const taints = (Array.isArray(registration.taints) ? (registration.taints as unknown[]) : []).flatMap((taint) =>
        isRecord(taint) && typeof taint.key === 'string' && typeof taint.effect === 'string'
          ? [{ key: taint.key, effect: taint.effect, ...(typeof taint.value === 'string' ? { value: taint.value } : {}) }]
          : [],
      );
      return { labels, taints };
    }
  }
  return undefined;
}

/** The kubeadm documents the written files hold, parsed: the first of each kind. */
function kubeadmDocument(userData: string, kind: string): Record<string, unknown> | undefined {
  for (const file of writtenFiles(userData)) {
    for (const document of parseAllDocuments(file.content)) {
      const value: unknown = document.errors.length > 0 ? undefined : document.toJS();
      if (isRecord(value) && value.kind === kind) return value;
    }
  }
  return undefined;
}

/**
 * What `kubeadm join` finds on the machine: its JoinConfiguration's discovery, the files the boot script fills from
 * templates (`render_template <template> <path>`) and the placeholders it fills them with (`-e "s|@KILN_X@|$X|g"`,
 * each from `X="$(parameter "<name>")"`, optionally piped through `base64 -w0`). Undefined without a JoinConfiguration.
 */
function joinSpecOf(userData: string, script: string): JoinSpec | undefined {
  const join = kubeadmDocument(userData, 'JoinConfiguration');
  if (join === undefined || !isRecord(join.discovery)) return undefined;
  const variables = new Map(
    [...script.matchAll(/^\s*([A-Z_][A-Z0-9_]*)="\$\(parameter "([^"]+)"( \| base64 -w0)?\)"\s*$/gm)].map((match) => [match[1] ?? '', { parameter: match[2] ?? '', base64: match[3] !== undefined }]),
  );
  const placeholders = Object.fromEntries(
    [...script.matchAll(/-e "s\|(@KILN_[A-Z_]+@)\|\$([A-Z_][A-Z0-9_]*)\|g"/g)].flatMap((match) => {
      const source = variables.get(match[2] ?? '');
      return source === undefined ? [] : [[match[1] ?? '', source]];
    }),
  );
  const templates = new Map(writtenFiles(userData).map((file) => [file.path, file.content]));
  const files = Object.fromEntries(
    [...script.matchAll(/^\s*render_template "?([^\s"$]+)"? "?([^\s"$]+)"?\s*$/gm)].flatMap((match) => {
      const template = templates.get(match[1] ?? '');
      return template === undefined ? [] : [[match[2] ?? '', template]];
    }),
  );
  const timeouts = isRecord(join.timeouts) ? join.timeouts : {};
  const discoveryTimeoutMs = typeof timeouts.discovery === 'string' ? durationMs(timeouts.discovery) : undefined;
  return { discovery: join.discovery, files, placeholders, ...(discoveryTimeoutMs === undefined ? {} : { discoveryTimeoutMs }) };
}

/**
 * kube-apiserver's --anonymous-auth as the ClusterConfiguration kubeadm init runs with sets it (`apiServer.extraArgs`,
 * v1beta4's list of name and value); kube-apiserver's own default is true. Undefined without a ClusterConfiguration.
 */
function apiServerAnonymousAuthOf(userData: string): boolean | undefined {
  const cluster = kubeadmDocument(userData, 'ClusterConfiguration');
  if (cluster === undefined) return undefined;
  const extraArgs = isRecord(cluster.apiServer) && Array.isArray(cluster.apiServer.extraArgs) ? (cluster.apiServer.extraArgs as unknown[]) : [];
  const flag = extraArgs.filter((arg) => isRecord(arg) && arg.name === 'anonymous-auth').at(-1);
  return !(isRecord(flag) && String(flag.value) === 'false');
}

/**
 * The API server certificate's extra names as the ClusterConfiguration kubeadm init runs with lists them
 * (`apiServer.certSANs`), boot placeholders unfilled. Undefined without a ClusterConfiguration.
 */
function apiServerCertSansOf(userData: string): string[] | undefined {
  const cluster = kubeadmDocument(userData, 'ClusterConfiguration');
  if (cluster === undefined) return undefined;
  const sans = isRecord(cluster.apiServer) && Array.isArray(cluster.apiServer.certSANs) ? (cluster.apiServer.certSANs as unknown[]) : [];
  return sans.map(String);
}

/**
 * The image of the static pod the user data writes for the kubelet to run beside the API server (the KMS plugin's
 * template, the only Pod Kiln writes): what the kubelet pulls when it starts it. Undefined without one.
 */
function staticPodImageOf(userData: string): string | undefined {
  const pod = kubeadmDocument(userData, 'Pod');
  const containers = isRecord(pod) && isRecord(pod.spec) && Array.isArray(pod.spec.containers) ? (pod.spec.containers as unknown[]) : [];
  const [first] = containers;
  return isRecord(first) && typeof first.image === 'string' ? first.image : undefined;
}

export interface BootBehaviour {
  providerIdFromMetadata: boolean;
  ssmAgent: boolean;
  scripts: string[];
  joinTokenTtlMs?: number;
  joinTokenUsages?: string[];
  nodeRegistration?: NodeRegistrationOf;
  join?: JoinSpec;
  apiServerAnonymousAuth?: boolean;
  apiServerCertSans?: string[];
  staticPodImage?: string;
  /** How the boot script runs: once from runcmd, or as a systemd unit that restarts it. */
  bootProcedure?: BootProcedure;
  /** The fingerprint the script requires of the only primary key in pkgs.k8s.io's Release.key before apt trusts it. */
  kubernetesAptKeyPin?: string;
}

/**
 * The check a boot script makes of the Release.key it fetched from pkgs.k8s.io before it trusts it: the primary keys
 * `gpg --show-keys --with-colons` lists (gnupg doc/DETAILS: a `pub` record, then its `fpr`), compared with one
 * fingerprint, a mismatch ending the script. Undefined when the script trusts the file as it comes.
 */
function kubernetesAptKeyPinOf(script: string): string | undefined {
  const check =
    /pkgs\.k8s\.io\/core:\/stable:\/v[\d.]+\/deb\/Release\.key"?\n[^\n]*gpg [^\n]*--show-keys --with-colons[^\n]*\n\s*if \[ "\$\w+" != "([0-9A-F]{40})" \]; then\n(?:[^\n]*\n){0,3}?\s*exit [1-9]/.exec(script);
  return check?.[1];
}

/** How the user data runs its boot script: the executable it writes that runs `kubeadm init` or `kubeadm join`. */
function bootProcedureOfUserData(userData: string): BootProcedure | undefined {
  const parsed = parseUserData(userData);
  if ('error' in parsed) return undefined;
  const files = writtenFiles(userData);
  const script = files.find((file) => /^[0-7]{3,4}$/.test(file.permissions) && (Number.parseInt(file.permissions, 8) & 0o111) !== 0 && /^\s*kubeadm (init|join)\b/m.test(file.content));
  return script === undefined ? undefined : bootProcedureOf(parsed.document, files, script.path);
}

/**
 * What a machine does at boot by its user data alone: whether it tells its
 * kubelet the provider ID from the instance metadata, whether it installs
 * and starts the SSM agent, and the labels and taints its kubelet registers.
 */
export const bootBehaviour = byUserData(readBootBehaviour);

function readBootBehaviour(userData: string): BootBehaviour {
  const written = bootScript(userData);
  const ttl = joinTokenTtl(written);
  const providerIdFromMetadata =
    /PROVIDER_ID="aws:\/\/\/\$\(cloud-init query v1\.availability_zone\)\/\$\(cloud-init query v1\.instance_id\)"/.test(written) &&
    /-e "s\|@KILN_PROVIDER_ID@\|\$PROVIDER_ID\|g"/.test(written) &&
    /name: provider-id\s*\n\s*value: "?@KILN_PROVIDER_ID@"?/.test(written);
  const ssmAgent = /dpkg -i \S*amazon-ssm-agent\.deb/.test(written) && /systemctl enable --now amazon-ssm-agent/.test(written);
  // What Run Command can run later: the files written with an executable mode.
  const scripts = writtenFiles(userData)
    .filter((file) => file.path !== '' && /^[0-7]{3,4}$/.test(file.permissions) && (Number.parseInt(file.permissions, 8) & 0o111) !== 0)
    .map((file) => file.path);
  const nodeRegistration = nodeRegistrationOf(userData);
  const join = joinSpecOf(userData, written);
  const initToken = (kubeadmDocument(userData, 'InitConfiguration')?.bootstrapTokens as unknown[] | undefined)?.[0];
  const joinTokenUsages = isRecord(initToken) && Array.isArray(initToken.usages) ? initToken.usages.map(String) : undefined;
  const apiServerAnonymousAuth = apiServerAnonymousAuthOf(userData);
  const apiServerCertSans = apiServerCertSansOf(userData);
  const staticPodImage = staticPodImageOf(userData);
  const bootProcedure = bootProcedureOfUserData(userData);
  const kubernetesAptKeyPin = kubernetesAptKeyPinOf(written);
  return {
    providerIdFromMetadata,
    ssmAgent,
    scripts,
    ...(ttl === undefined ? {} : { joinTokenTtlMs: ttl }),
    ...(joinTokenUsages === undefined ? {} : { joinTokenUsages }),
    ...(nodeRegistration === undefined ? {} : { nodeRegistration }),
    ...(join === undefined ? {} : { join }),
    ...(apiServerAnonymousAuth === undefined ? {} : { apiServerAnonymousAuth }),
    ...(apiServerCertSans === undefined ? {} : { apiServerCertSans }),
    ...(staticPodImage === undefined ? {} : { staticPodImage }),
    ...(bootProcedure === undefined ? {} : { bootProcedure }),
    ...(kubernetesAptKeyPin === undefined ? {} : { kubernetesAptKeyPin }),
  };
}

/** A Go duration as kubeadm reads one (`2h`, `1h30m`, `90s`), in milliseconds. */
function durationMs(text: string): number | undefined {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(h|m|s)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== text) return undefined;
  const unit = { h: 3_600_000, m: 60_000, s: 1_000 } as const;
  return parts.reduce((sum, part) => sum + Number(part[1]) * unit[part[2] as keyof typeof unit], 0);
}

/** The TTL of the bootstrap token an InitConfiguration in the written files declares. */
function joinTokenTtl(written: string): number | undefined {
  const init = written.split(/^---$/m).find((document) => /^\s*kind: InitConfiguration\s*$/m.test(document));
  const ttl = init === undefined ? undefined : /^\s*bootstrapTokens:[\s\S]*?^\s*ttl: "?([0-9hms.]+)"?\s*$/m.exec(init)?.[1];
  return ttl === undefined ? undefined : durationMs(ttl);
}

/** What kube-apiserver reads at start on a control plane machine: its AdmissionConfiguration, among the files cloud-init wrote. */
export interface ApiServerAdmission {
  /** --admission-control-config-file, from the ClusterConfiguration's `apiServer.extraArgs` (kubeadm v1beta4: a list of name/value). */
  configFile: string;
  /** Every file the user data writes, by path: the machine's disk as the API server first finds it. */
  files: Readonly<Record<string, string>>;
}

/** The API server's admission control configuration a machine's user data sets up; undefined without a ClusterConfiguration naming one. */
export const apiServerAdmissionOf = byUserData((userData: string): ApiServerAdmission | undefined => {
  const files = writtenFiles(userData);
  for (const file of files) {
    for (const document of parseAllDocuments(file.content)) {
      const value: unknown = document.errors.length > 0 ? undefined : document.toJS();
      if (!isRecord(value) || value.kind !== 'ClusterConfiguration' || !isRecord(value.apiServer)) continue;
      const extraArgs = Array.isArray(value.apiServer.extraArgs) ? (value.apiServer.extraArgs as unknown[]) : [];
      const configFile = extraArgs.find((arg): arg is { name: string; value: string } => isRecord(arg) && arg.name === 'admission-control-config-file' && typeof arg.value === 'string')?.value;
      if (configFile === undefined) return undefined;
      return { configFile, files: Object.fromEntries(files.map((written) => [written.path, written.content])) };
    }
  }
  return undefined;
});
