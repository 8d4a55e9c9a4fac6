import { readFile, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { isRecord } from '#core';
import {
  KUBEADM_MODELLED_MINORS,
  type KubeadmDefaults,
  kubeadmControlPlaneFiles,
  kubeadmDefaults,
  kubeadmNodeFiles,
  type FileState,
  type Flags,
} from './kubeadm-defaults.ts';

export type Component = 'apiserver' | 'controllermanager' | 'scheduler' | 'etcd' | 'kubelet';

/** One machine as kubeadm would leave it after applying the rendered configuration. */
export interface Machine {
  name: string;
  /** The Kubernetes release kubeadm installs, from the rendered ClusterConfiguration (`v1.35.9`). */
  kubernetesVersion: string;
  role: 'control-plane' | 'worker';
  processes: Map<Component, Flags>;
  files: Map<string, FileState>;
  kubeletConfig: Record<string, unknown>;
  /** Extra files Kiln renders that some checks read (encryption config, auth config). */
  renderedFiles: Map<string, string>;
  /** For a machine that runs `kubeadm join`: its JoinConfiguration's `discovery`. */
  joinDiscovery?: Obj;
}

export class RenderedConfigError extends Error {
  override readonly name = 'RenderedConfigError';
}

type Obj = Record<string, unknown>;
const at = (v: unknown, ...keys: string[]): unknown => keys.reduce<unknown>((cur, k) => (isRecord(cur) ? cur[k] : undefined), v);

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return undefined;
    throw error;
  }
}

function parseDocs(source: string, path: string): Obj[] {
  return parseAllDocuments(source).map((doc) => {
    if (doc.errors.length > 0) throw new RenderedConfigError(`${path}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    return isRecord(value) ? value : {};
  });
}

/** A YAML scalar as text; anything else (maps, lists) counts as absent. */
const scalarText = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;

const byKind = (docs: Obj[], kind: string): Obj | undefined => docs.find((d) => d.kind === kind);

/** v1beta4 extraArgs are lists of {name, value}; repeated names end with the last. */
function extraArgs(list: unknown): [string, string][] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((entry: unknown) => {
    const name = at(entry, 'name');
    const value = at(entry, 'value');
    return typeof name === 'string' ? [[`--${name}`, scalarText(value) ?? ''] as [string, string]] : [];
  });
}

const flags = (defaults: readonly [string, string][], overrides: [string, string][]): Flags =>
  new Map([...defaults, ...overrides]);

function deepMerge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] = isRecord(prev) && isRecord(value) ? deepMerge(prev, value) : value;
  }
  return out;
}

/** cloud-init `permissions` is an octal string ("0600"); the default is 0644 root:root. */
function applyWriteFiles(files: Map<string, FileState>, cloudConfig: Obj, source: string): void {
  const entries = cloudConfig.write_files;
  if (!Array.isArray(entries)) return;
  for (const entry of entries) {
    const path = at(entry, 'path');
    if (typeof path !== 'string') continue;
    const permissions = at(entry, 'permissions');
    const [owner = 'root', group = owner] = (scalarText(at(entry, 'owner')) ?? 'root:root').split(':');
    const mode = Number.parseInt(scalarText(permissions) ?? '0644', 8);
    const previous = files.get(path);
    files.set(path, { mode, owner, group, directory: previous?.directory ?? false, source });
  }
}

/**
 * The commands a machine runs at boot: runcmd, and the script of each systemd unit runcmd starts (`systemctl start`
 * or `enable --now`, a unit file write_files wrote, its ExecStart=), line by line.
 */
function bootCommands(cloudConfig: Obj): string[] {
  const lines = (Array.isArray(cloudConfig.runcmd) ? cloudConfig.runcmd : []).map((command) => (Array.isArray(command) ? command.map(String).join(' ') : String(command)));
  const written = new Map(
    (Array.isArray(cloudConfig.write_files) ? cloudConfig.write_files : []).flatMap((entry) => {
      const path = at(entry, 'path');
      const content = at(entry, 'content');
      return typeof path === 'string' && typeof content === 'string' ? [[path, content] as const] : [];
    }),
  );
  const scripts = lines.flatMap((line) => {
    const words = line.split(/\s+/);
    const verb = words.slice(1).find((word) => !word.startsWith('-'));
    if (words[0] !== 'systemctl' || !(verb === 'start' || (verb === 'enable' && words.includes('--now')))) return [];
    return words
      .slice(words.indexOf(verb) + 1)
      .filter((word) => !word.startsWith('-'))
      .flatMap((unit) => {
        const execStart = /^ExecStart=[-@:+!]*(\S+)/m.exec(written.get(`/etc/systemd/system/${unit.includes('.') ? unit : `${unit}.service`}`) ?? '')?.[1];
        return (written.get(execStart ?? '') ?? '').split('\n');
      });
  });
  return [...lines, ...scripts];
}

/** Only `chmod NNN path` and `chown u:g path` are modeled: what hardening steps at boot use. */
function applyRuncmd(files: Map<string, FileState>, cloudConfig: Obj, source: string): void {
  for (const line of bootCommands(cloudConfig)) {
    for (const part of line.split(/&&|;/).map((s) => s.trim())) {
      const chmod = /^chmod\s+(?:-R\s+)?([0-7]{3,4})\s+(\S+)$/.exec(part);
      const chown = /^chown\s+(?:-R\s+)?([\w-]+):([\w-]+)\s+(\S+)$/.exec(part);
      if (chmod?.[1] && chmod[2]) {
        const previous = files.get(chmod[2]);
        if (previous) files.set(chmod[2], { ...previous, mode: Number.parseInt(chmod[1], 8), source });
      } else if (chown?.[1] && chown[2] && chown[3]) {
        const previous = files.get(chown[3]);
        if (previous) files.set(chown[3], { ...previous, owner: chown[1], group: chown[2], source });
      }
    }
  }
}

async function readCloudConfig(path: string): Promise<Obj | undefined> {
  const source = await readOptional(path);
  if (source === undefined) return undefined;
  return parseDocs(source, path)[0] ?? {};
}

function kubeletFlags(defaults: KubeadmDefaults, nodeRegistration: unknown): Flags {
  return flags(defaults.kubeletFlags, extraArgs(at(nodeRegistration, 'kubeletExtraArgs')));
}

/**
 * Builds the machines kubeadm would produce from a rendered directory: the
 * first control plane (init), one joined control plane if rendered, and one
 * worker per cloud-init pool file.
 */
export async function buildMachines(renderedDir: string): Promise<Machine[]> {
  const initPath = join(renderedDir, 'kubeadm/init-configuration.yaml');
  const initSource = await readOptional(initPath);
  if (initSource === undefined) throw new RenderedConfigError(`${initPath} is missing`);
  const initDocs = parseDocs(initSource, initPath);
  const cluster = byKind(initDocs, 'ClusterConfiguration') ?? {};
  const init = byKind(initDocs, 'InitConfiguration') ?? {};
  const kubernetesVersion = scalarText(at(cluster, 'kubernetesVersion')) ?? '';
  const defaults = kubeadmDefaults(kubernetesVersion);
  if (defaults === undefined) {
    throw new RenderedConfigError(
      `${initPath}: kubeadm's defaults are modelled for Kubernetes ${KUBEADM_MODELLED_MINORS.oldest} to ${KUBEADM_MODELLED_MINORS.newest}, not '${kubernetesVersion}'`,
    );
  }
  const standaloneKubelet = await readOptional(join(renderedDir, 'kubeadm/kubelet-configuration.yaml'));
  // kubeadm uploads the KubeletConfiguration given to init; every node downloads that one.
  const userKubelet =
    byKind(initDocs, 'KubeletConfiguration') ??
    (standaloneKubelet === undefined ? undefined : byKind(parseDocs(standaloneKubelet, 'kubelet-configuration.yaml'), 'KubeletConfiguration')) ??
    {};
  const kubeletConfig = deepMerge({ ...defaults.kubeletConfig }, userKubelet);

  const localEtcd = at(cluster, 'etcd', 'external') === undefined;
  const etcdDataDir = scalarText(at(cluster, 'etcd', 'local', 'dataDir')) ?? '/var/lib/etcd';
  const controlPlaneProcesses = (): Map<Component, Flags> => {
    const processes = new Map<Component, Flags>([
      ['apiserver', flags(defaults.apiServerFlags, extraArgs(at(cluster, 'apiServer', 'extraArgs')))],
      ['controllermanager', flags(defaults.controllerManagerFlags, extraArgs(at(cluster, 'controllerManager', 'extraArgs')))],
      ['scheduler', flags(defaults.schedulerFlags, extraArgs(at(cluster, 'scheduler', 'extraArgs')))],
    ]);
    if (localEtcd) {
      processes.set('etcd', flags([...defaults.etcdFlags, ['--data-dir', etcdDataDir]], extraArgs(at(cluster, 'etcd', 'local', 'extraArgs'))));
    }
    return processes;
  };

  const renderedFiles = new Map<string, string>();
  for (const [hostPath, rel] of [
    ['encryption', 'encryption/encryption-config.yaml'],
    ['audit-policy', 'kubeadm/audit-policy.yaml'],
    ['admission', 'kubeadm/admission-configuration.yaml'],
  ] as const) {
    const text = await readOptional(join(renderedDir, rel));
    if (text !== undefined) renderedFiles.set(hostPath, text);
  }

  const controlPlaneCloud = await readCloudConfig(join(renderedDir, 'cloud-init/control-plane.yaml'));
  const collectWriteFileContents = (cloud: Obj | undefined): void => {
    const entries = cloud?.write_files;
    if (!Array.isArray(entries)) return;
    for (const entry of entries) {
      const path = at(entry, 'path');
      const content = at(entry, 'content');
      if (typeof path === 'string' && typeof content === 'string') renderedFiles.set(path, content);
    }
  };
  collectWriteFileContents(controlPlaneCloud);

  const controlPlane = (name: string, first: boolean, nodeRegistration: unknown, joinDiscovery?: Obj): Machine => {
    const files = kubeadmControlPlaneFiles({ first, localEtcd, etcdDataDir });
    if (controlPlaneCloud) {
      applyWriteFiles(files, controlPlaneCloud, 'cloud-init/control-plane.yaml write_files');
      applyRuncmd(files, controlPlaneCloud, 'cloud-init/control-plane.yaml boot commands');
    }
    const processes = controlPlaneProcesses();
    processes.set('kubelet', kubeletFlags(defaults, nodeRegistration));
    return { name, kubernetesVersion, role: 'control-plane', processes, files, kubeletConfig, renderedFiles, ...(joinDiscovery === undefined ? {} : { joinDiscovery }) };
  };
  const discoveryOf = (join: unknown): Obj | undefined => {
    const discovery = at(join, 'discovery');
    return isRecord(discovery) ? discovery : undefined;
  };

  const machines: Machine[] = [controlPlane('control-plane (kubeadm init)', true, at(init, 'nodeRegistration'))];
  const joinCpPath = join(renderedDir, 'kubeadm/join-control-plane.yaml');
  const joinCp = await readOptional(joinCpPath);
  if (joinCp !== undefined) {
    const joinDoc = byKind(parseDocs(joinCp, joinCpPath), 'JoinConfiguration') ?? {};
    machines.push(controlPlane('control-plane (kubeadm join)', false, at(joinDoc, 'nodeRegistration'), discoveryOf(joinDoc)));
  }

  const joinWorkerPath = join(renderedDir, 'kubeadm/join-worker.yaml');
  const joinWorker = await readOptional(joinWorkerPath);
  const workerJoin = joinWorker === undefined ? undefined : byKind(parseDocs(joinWorker, joinWorkerPath), 'JoinConfiguration');
  const workerRegistration = at(workerJoin, 'nodeRegistration');
  const workerDiscovery = discoveryOf(workerJoin);
  const cloudDir = join(renderedDir, 'cloud-init');
  const pools = (await readdir(cloudDir).catch(() => [])).filter((f) => f.endsWith('.yaml') && f !== 'control-plane.yaml').sort();
  for (const poolFile of pools) {
    const cloud = await readCloudConfig(join(cloudDir, poolFile));
    const files = kubeadmNodeFiles();
    if (cloud) {
      applyWriteFiles(files, cloud, `cloud-init/${poolFile} write_files`);
      applyRuncmd(files, cloud, `cloud-init/${poolFile} boot commands`);
    }
    machines.push({
      name: `worker pool ${basename(poolFile, '.yaml')}`,
      kubernetesVersion,
      role: 'worker',
      processes: new Map([['kubelet', kubeletFlags(defaults, workerRegistration)]]),
      files,
      kubeletConfig,
      renderedFiles,
      ...(workerDiscovery === undefined ? {} : { joinDiscovery: workerDiscovery }),
    });
  }
  return machines;
}
