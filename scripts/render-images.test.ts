import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KUBERNETES_RELEASES, isRecord } from '#core';
import { renderCluster, validateOrder } from './render.ts';

/**
 * What `npm run render` hands the machines, read as a reviewer would: every image a machine pulls because of it must be
 * named by digest, or be in the README's list of what Kiln cannot pin, with the reason.
 */
const DIGEST = /@sha256:[0-9a-f]{64}$/;
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const exampleOrder = JSON.parse(readFileSync(new URL('../packages/bootstrap/examples/full-order.json', import.meta.url), 'utf8')) as Record<string, unknown>;

/** The first column of the README's table of what is not pinned by digest. */
function documentedWithoutDigest(): string[] {
  const table = readme.slice(readme.indexOf("| Not pinned by digest in Kiln's configuration |"));
  const rows = table.split('\n').slice(2);
  return rows.slice(0, rows.findIndex((row) => !row.startsWith('|'))).map((row) => /^\| `([^`]+)` \|/.exec(row)?.[1] ?? row);
}

const documented = (pull: string) => documentedWithoutDigest().some((entry) => pull === entry || pull.startsWith(`${entry}:`) || pull.startsWith(`${entry}@`));

interface Pull {
  /** An image reference, or what pulls images it does not name (`helm chart <name>`, `kubeadm control plane`). */
  ref: string;
  file: string;
}

const CONTAINER_LISTS = new Set(['containers', 'initContainers', 'ephemeralContainers']);

/** The images of every container list in an object, wherever it sits (Pod, Deployment, CronJob...). */
function containerImages(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(containerImages);
  if (!isRecord(value)) return [];
  return Object.entries(value).flatMap(([key, child]) => {
    if (CONTAINER_LISTS.has(key) && Array.isArray(child)) return child.flatMap((container) => (isRecord(container) && typeof container.image === 'string' ? [container.image] : []));
    return containerImages(child);
  });
}

/** An object's pulls: a HelmChart's chart (its images are the chart's) and install Job; any workload's containers. */
function objectPulls(object: Record<string, unknown>): string[] {
  const spec = isRecord(object.spec) ? object.spec : {};
  if (object.kind === 'HelmChart') return [`helm chart ${String(spec.chart)}`, ...(typeof spec.jobImage === 'string' ? [spec.jobImage] : [])];
  // A policy describes images (Kyverno's patterns); it pulls none.
  if (object.kind === 'ClusterPolicy' || object.kind === 'Policy') return [];
  if (object.kind === 'ClusterConfiguration') return ['kubeadm control plane'];
  return containerImages(object);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)]));
}

/** Every YAML document of a text, and of every YAML file its cloud-init `write_files` writes. */
function yamlObjects(text: string): Record<string, unknown>[] {
  const objects = parseAllDocuments(text).flatMap((document) => (document.errors.length > 0 ? [] : [document.toJS() as unknown])).filter(isRecord);
  const written = objects.flatMap((object) => (Array.isArray(object.write_files) ? (object.write_files as unknown[]) : []));
  const nested = written.flatMap((file) => (isRecord(file) && typeof file.content === 'string' && typeof file.path === 'string' && /\.ya?ml(\.tmpl)?$/.test(file.path) ? yamlObjects(file.content) : []));
  return [...objects, ...nested];
}

function pullsOf(dir: string): Pull[] {
  return filesUnder(dir).flatMap((path) => {
    const file = relative(dir, path);
    const text = readFileSync(path, 'utf8');
    // containerd's CRI plugin pulls its sandbox image itself (config.toml, written by cloud-init).
    const sandboxImages = [...text.matchAll(/sandbox_image = "([^"]+)"/g)].map((match) => match[1] ?? '');
    const objects = /\.ya?ml$/.test(file) ? yamlObjects(text) : [];
    return [...sandboxImages, ...objects.flatMap(objectPulls)].map((ref) => ({ ref, file }));
  });
}

let dir: string;
let pulls: Pull[];

beforeAll(async () => {
  const order = validateOrder({
    ...exampleOrder,
    // Every add-on on, and the KMS plugin's static pod on the control plane machines.
    encryption: { ...(exampleOrder.encryption as Record<string, unknown>), atRest: { provider: 'kms', keySource: 'kms' } },
    extensions: { policyEngine: { enabled: true }, intrusionDetection: { enabled: true } },
  });
  if (!('spec' in order)) throw new Error(`the order is refused: ${JSON.stringify(order.problem)}`);
  dir = mkdtempSync(join(tmpdir(), 'kiln-render-images-'));
  await renderCluster(order.spec, dir);
  pulls = pullsOf(dir);
}, 60_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the images in what `npm run render` writes', () => {
  it('finds the pulls a reviewer would: the add-ons, their install Jobs, containerd, kubeadm and the KMS plugin', () => {
    const refs = pulls.map((pull) => pull.ref);
    expect(refs).toEqual(expect.arrayContaining(['helm chart cilium', 'helm chart tetragon', 'helm chart kyverno', 'kubeadm control plane']));
    expect(refs.some((ref) => ref.includes('/helm-controller:'))).toBe(true);
    expect(refs.some((ref) => ref.includes('/pause:'))).toBe(true);
    expect(refs.some((ref) => ref.includes('aws-encryption-provider'))).toBe(true);
  });

  it('names each by digest, or lists it in the README with why it cannot', () => {
    const unpinned = pulls.filter((pull) => !DIGEST.test(pull.ref) && !documented(pull.ref)).map((pull) => `${pull.file}: ${pull.ref}`);
    expect([...new Set(unpinned)]).toEqual([]);
  });

  it('names the pause image of every Kubernetes release by digest, or lists it', () => {
    expect(KUBERNETES_RELEASES.filter((release) => !DIGEST.test(release.pauseImage) && !documented(release.pauseImage)).map((release) => release.pauseImage)).toEqual([]);
  });

  it('lists nothing in the README that Kiln no longer pulls by tag', () => {
    const byTag = [...pulls.map((pull) => pull.ref), ...KUBERNETES_RELEASES.map((release) => release.pauseImage)].filter((ref) => !DIGEST.test(ref));
    const stale = documentedWithoutDigest().filter((entry) => !byTag.some((ref) => ref === entry || ref.startsWith(`${entry}:`) || ref.startsWith(`${entry}@`)));
    expect(stale).toEqual([]);
  });
});
