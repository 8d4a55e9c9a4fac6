import { parse } from 'yaml';
import type { Check, TestItem } from './benchmark.ts';
import type { Finding } from './compare.ts';
import type { FileState } from './kubeadm-defaults.ts';
import type { Component, Machine } from './machine.ts';

/**
 * kube-bench's path variables, each a list of candidates of which the first
 * that exists is used (cfg/config.yaml); only the kubeadm-relevant ones.
 */
export const BENCH_VARIABLES: Readonly<Record<string, readonly string[]>> = {
  apiserverconf: ['/etc/kubernetes/manifests/kube-apiserver.yaml', '/etc/kubernetes/manifests/kube-apiserver.manifest'],
  controllermanagerconf: ['/etc/kubernetes/manifests/kube-controller-manager.yaml', '/etc/kubernetes/manifests/kube-controller-manager.manifest'],
  schedulerconf: ['/etc/kubernetes/manifests/kube-scheduler.yaml', '/etc/kubernetes/manifests/kube-scheduler.manifest'],
  etcdconf: ['/etc/kubernetes/manifests/etcd.yaml', '/etc/kubernetes/manifests/etcd.manifest'],
  schedulerkubeconfig: ['/etc/kubernetes/scheduler.conf'],
  controllermanagerkubeconfig: ['/etc/kubernetes/controller-manager.conf'],
  kubeletsvc: ['/etc/systemd/system/kubelet.service.d/10-kubeadm.conf', '/etc/systemd/system/kubelet.service', '/lib/systemd/system/kubelet.service'],
  kubeletkubeconfig: ['/etc/kubernetes/kubelet.conf', '/var/lib/kubelet/kubeconfig'],
  kubeletconf: ['/var/lib/kubelet/config.yaml', '/etc/kubernetes/kubelet/kubelet-config.json'],
  kubeletcafile: ['/etc/kubernetes/pki/ca.crt'],
  proxykubeconfig: ['/etc/kubernetes/proxy.conf', '/var/lib/kube-proxy/kubeconfig.conf'],
  etcddatadir: ['/var/lib/etcd/default.etcd'],
};

const PROCESS_VARIABLES: Readonly<Record<string, Component>> = {
  apiserverbin: 'apiserver',
  controllermanagerbin: 'controllermanager',
  schedulerbin: 'scheduler',
  etcdbin: 'etcd',
  kubeletbin: 'kubelet',
};

/** What an audit looks at on one machine, instead of running it. */
export type Observation =
  | { kind: 'process'; component: Component; findings: (item: TestItem) => Finding }
  | { kind: 'files'; lines: string[]; looked: string }
  | { kind: 'absent'; why: string };

export function resolveVariable(machine: Machine, name: string): string | undefined {
  return (BENCH_VARIABLES[name] ?? []).find((path) => machine.files.has(path));
}

/** `{.a.b}` and kube-bench's `{range .list[:]}{}{','}{end}` over the kubelet config. */
export function readJsonPath(document: unknown, path: string): Finding {
  const range = /^\{range \.([\w.]+)\[:\]\}/.exec(path);
  const plain = /^\{\.([\w.]+)\}$/.exec(path);
  const keys = (range?.[1] ?? plain?.[1])?.split('.');
  if (!keys) throw new Error(`unsupported path ${path}`);
  let value: unknown = document;
  for (const key of keys) value = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;
  if (value === undefined || value === null) return { present: false, value: '' };
  if (Array.isArray(value)) return value.length === 0 ? { present: false, value: '' } : { present: true, value: value.map(String).join(',') };
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return { present: true, value: String(value) };
  return { present: true, value: JSON.stringify(value) };
}

function statLine(format: string, path: string, file: FileState): string {
  return format
    .replaceAll('%a', file.mode.toString(8))
    .replaceAll('%U', file.owner)
    .replaceAll('%G', file.group)
    .replaceAll('%n', path);
}

function filesObservation(machine: Machine, audit: string, paths: string[], looked: string): Observation {
  const format = /stat -c\s+(?:"([^"]+)"|(\S+))/.exec(audit);
  const spec = format?.[1] ?? format?.[2];
  if (!spec) return { kind: 'absent', why: `audit not modeled: ${audit.trim().slice(0, 80)}` };
  const existing = paths.filter((p) => machine.files.has(p));
  if (existing.length === 0) return { kind: 'absent', why: `${looked} does not exist on ${machine.name}` };
  const lines = existing.flatMap((p) => {
    const file = machine.files.get(p);
    return file ? [statLine(spec, p, file)] : [];
  });
  return { kind: 'files', lines, looked: existing.map((p) => `${p} (${machine.files.get(p)?.source ?? '?'})`).join(', ') };
}

function encryptionProviders(machine: Machine, configPath: string | undefined): Finding {
  const text = configPath === undefined ? undefined : (machine.renderedFiles.get(configPath) ?? machine.renderedFiles.get('encryption'));
  if (text === undefined) return { present: false, value: '' };
  const doc: unknown = parse(text);
  const resources = (doc as { resources?: { providers?: Record<string, unknown>[] }[] } | null)?.resources ?? [];
  // The audit reads the line after `providers:`, i.e. each resource's first provider.
  const first = resources.flatMap((r) => Object.keys(r.providers?.[0] ?? {}).slice(0, 1));
  return first.length === 0 ? { present: false, value: '' } : { present: true, value: [...new Set(first)].join(',') };
}

/** Interprets a check's audit against one machine. */
export function observe(check: Check, machine: Machine): Observation {
  const audit = check.audit ?? '';
  const processVar = /\$(\w+bin)\b/.exec(audit)?.[1];
  const component = processVar ? PROCESS_VARIABLES[processVar] : undefined;
  const kubelet = machine.processes.get('kubelet') ?? new Map<string, string>();

  if (audit.includes('cni-conf-dir')) {
    return kubelet.has('--cni-conf-dir')
      ? { kind: 'absent', why: 'audit not modeled: kubelet --cni-conf-dir contents' }
      : { kind: 'absent', why: 'kubelet has no --cni-conf-dir (containerd owns CNI config) and Cilium IPAM writes nothing to /var/lib/cni/networks' };
  }
  if (audit.includes('data-dir')) {
    const dataDir = machine.processes.get('etcd')?.get('--data-dir');
    if (dataDir === undefined) return { kind: 'absent', why: `no local etcd on ${machine.name}` };
    return filesObservation(machine, audit, [dataDir], `etcd data dir ${dataDir}`);
  }
  if (audit.includes('CAFILE')) {
    const fromFlag = kubelet.get('--client-ca-file');
    const fromConfig = readJsonPath(machine.kubeletConfig, '{.authentication.x509.clientCAFile}');
    const path = fromFlag ?? (fromConfig.present ? fromConfig.value : resolveVariable(machine, 'kubeletcafile'));
    return path === undefined ? { kind: 'absent', why: 'kubelet has no client CA file' } : filesObservation(machine, audit, [path], path);
  }
  if (audit.includes('ENCRYPTION_PROVIDER_CONFIG')) {
    const configPath = machine.processes.get('apiserver')?.get('--encryption-provider-config');
    const finding = encryptionProviders(machine, configPath);
    return { kind: 'process', component: 'apiserver', findings: () => finding };
  }
  const loop = /for \w+ in ([^;]+);/.exec(audit);
  if (loop?.[1] && audit.includes('stat -c')) {
    const paths = loop[1].trim().split(/\s+/);
    return filesObservation(machine, audit, paths, paths.join(' '));
  }
  const find = /find (\/\S+?)\/?(?:\s+-name '([^']+)')?\s*\|/.exec(audit);
  if (find?.[1] && audit.includes('stat -c')) {
    const dir = find[1];
    const glob = find[2] ? new RegExp(`^${find[2].replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*')}$`) : undefined;
    const paths = [...machine.files.keys()].filter(
      (p) => (p === dir || p.startsWith(`${dir}/`)) && (glob === undefined || glob.test(p.split('/').pop() ?? '')),
    );
    return filesObservation(machine, audit, paths.sort(), glob ? `${dir}/${find[2] ?? ''}` : `${dir}/`);
  }
  const fileVar = /test -e \$(\w+)/.exec(audit)?.[1];
  if (fileVar && audit.includes('stat -c')) {
    const path = resolveVariable(machine, fileVar);
    if (path === undefined) return { kind: 'absent', why: `none of ${(BENCH_VARIABLES[fileVar] ?? [`$${fileVar}`]).join(', ')} exists on ${machine.name}` };
    return filesObservation(machine, audit, [path], path);
  }
  if (component) {
    const processFlags = machine.processes.get(component);
    if (!processFlags) return { kind: 'absent', why: `${component} does not run on ${machine.name}` };
    return {
      kind: 'process',
      component,
      findings: (item) => {
        // As kube-bench: a flag on the command line wins over the config file.
        if (item.flag !== undefined && processFlags.has(item.flag)) return { present: true, value: processFlags.get(item.flag) ?? '' };
        if (item.path !== undefined && check.audit_config?.includes('$kubeletconf')) {
          return { ...readJsonPath(machine.kubeletConfig, item.path), label: `config.yaml ${item.path.replace(/^\{range |[{}]/g, '')}` };
        }
        return { present: false, value: '' };
      },
    };
  }
  return { kind: 'absent', why: `audit not modeled: ${audit.trim().slice(0, 80)}` };
}
