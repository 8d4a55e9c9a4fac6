import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cloudConfigProblems, installedKubernetesRelease } from './validate.ts';

const documents = {
  valid: '#cloud-config\nssh_pwauth: false\ndisable_root: true\npackages: [curl]\nwrite_files:\n  - path: /etc/kiln/x\n    permissions: "0600"\n    content: hi\n',
  missingPath: '#cloud-config\nwrite_files:\n  - content: hi\n',
  wrongType: '#cloud-config\npackages: 7\n',
};

/** The real validator, for agreement: Debian's cloud-init (installed by scripts/install-tools.sh). */
function realCloudInitAccepts(document: string): boolean {
  const file = join(mkdtempSync(join(tmpdir(), 'kiln-ci-')), 'user-data.yaml');
  writeFileSync(file, document);
  try {
    execFileSync('cloud-init', ['schema', '--config-file', file], { stdio: 'pipe' });
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') throw new Error('cloud-init is not installed: run `sudo bash scripts/install-tools.sh`');
    return false;
  }
}

describe("the sandbox's cloud-config check", () => {
  it('accepts what cloud-init accepts and refuses what it refuses', () => {
    for (const [name, document] of Object.entries(documents)) {
      const accepted = cloudConfigProblems(document).length === 0;
      expect({ name, accepted }).toEqual({ name, accepted: realCloudInitAccepts(document) });
    }
    expect(cloudConfigProblems(documents.valid)).toEqual([]);
    expect(cloudConfigProblems(documents.missingPath)).toEqual(["/write_files/0 must have required property 'path'"]);
  });

  it('refuses a top-level key cloud-init does not know, as the machines\' cloud-init 25.1 does', () => {
    // Its schema sets additionalProperties false at the top (Debian 12's 22.4 accepted unknown keys).
    expect(cloudConfigProblems('#cloud-config\ncolour: blue\n')).toEqual(['/ must NOT have additional properties']);
  });

  it('refuses user data that is not cloud-config at all', () => {
    expect(cloudConfigProblems('#!/bin/sh\necho hi\n')).toEqual(['user data does not start with #cloud-config']);
    expect(cloudConfigProblems('#cloud-config\n: [\n')[0]).toMatch(/not YAML/);
  });
});

describe('the release a machine installs', () => {
  it('is the kubelet its bootstrap script pins, not the order', () => {
    const userData = ['#cloud-config', 'write_files:', '  - path: /usr/local/sbin/kiln-bootstrap', '    content: |', '      apt-get update -q', '      DEBIAN_FRONTEND=noninteractive apt-get install -y -q kubelet=1.35.9-1.1 kubeadm=1.35.9-1.1', ''].join('\n');
    expect(installedKubernetesRelease(userData)).toBe('v1.35.9');
    expect(installedKubernetesRelease('#cloud-config\npackages: [containerd]\n')).toBeUndefined();
  });
});
