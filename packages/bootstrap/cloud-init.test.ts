import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { type IPod, Pod } from 'kubernetes-models/v1';
import { ClusterSpec, DEFAULT_KUBERNETES_VERSION, KUBERNETES_RELEASES, kubernetesReleaseOf } from '#core';
import { ADMISSION_CONFIG_SCRIPT, admissionConfigScript, admissionConfigurationFile } from './api-server-scripts.ts';
import { SSM_AGENT_VERSION, cloudConfig, maintenanceSchedule, renderUserData } from './cloud-init.ts';
import { PATHS } from './kubeadm.ts';
import { renderSshdConfig } from './sshd.ts';
import { validateCloudConfig, validateSshdDropIn } from './test-support.ts';

const SMALLEST = ClusterSpec.parse({ name: 'demo', region: 'eu-central-1', nodePools: [{ name: 'default', size: 1 }] });
const FULL = ClusterSpec.parse(JSON.parse(readFileSync(new URL('./examples/full-order.json', import.meta.url), 'utf8')));
const KMS = ClusterSpec.parse({ name: 'kms', region: 'eu-west-1', nodePools: [{ name: 'default', size: 1 }], encryption: { atRest: { provider: 'kms', keySource: 'kms' } } });
/** An operator's build of the KMS plugin, pinned by digest (KILN_KMS_PLUGIN_IMAGE). */
const PLUGIN_IMAGE = `123456789012.dkr.ecr.eu-west-1.amazonaws.com/aws-encryption-provider:v1.33.0@sha256:${'ab'.repeat(32)}`;
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILCRhT35qY7+PwmXi7z/5pTnbaG/xuxu6jdxAoIiJM3s kiln@demo';

interface WrittenFile {
  path: string;
  content: string;
  owner: string;
  permissions: string;
}

function allUserData(spec: ClusterSpec): [string, string][] {
  return [
    ['control-plane', renderUserData('cl_test', spec, 'control-plane', undefined, { authorizedKey: KEY, kmsPluginImage: PLUGIN_IMAGE })],
    ...spec.nodePools.map((pool): [string, string] => [pool.name, renderUserData('cl_test', spec, 'worker', pool.name, { authorizedKey: KEY })]),
  ];
}

describe('cloud-init user data', () => {
  for (const [label, spec] of [
    ['smallest', SMALLEST],
    ['full', FULL],
    ['KMS', KMS],
  ] as const) {
    it(`passes cloud-init schema for every role of the ${label} order`, () => {
      for (const [role, userData] of allUserData(spec)) {
        const result = validateCloudConfig(userData);
        expect(result, `${role}: ${result.output}`).toMatchObject({ ok: true });
      }
    });
  }

  it('is rejected by cloud-init schema when broken, so the check can fail', () => {
    const broken = renderUserData('cl_test', SMALLEST, 'worker', 'default').replace('ssh_pwauth: false', 'ssh_pwauth: [1, 2]');
    expect(validateCloudConfig(broken).ok).toBe(false);
  });

  it('locks accounts down and writes Kubernetes files as root-only', () => {
    const config = parse(renderUserData('cl_test', FULL, 'control-plane')) as {
      users: { name: string; lock_passwd: boolean; ssh_authorized_keys?: string[]; passwd?: string }[];
      ssh_pwauth: boolean;
      disable_root: boolean;
      write_files: WrittenFile[];
    };
    expect(config.ssh_pwauth).toBe(false);
    expect(config.disable_root).toBe(true);
    // The operator, and on control planes a system user that owns etcd's data (CIS 1.1.12); every password locked.
    expect(config.users.map((user) => user.name)).toEqual(['kiln', 'etcd']);
    for (const user of config.users) expect(user.lock_passwd).toBe(true);
    expect(config.users[0]).toMatchObject({ name: 'kiln', lock_passwd: true });
    expect(config.users[0]?.passwd).toBeUndefined();
    // Self-managed orders authorise the customer's key.
    expect(config.users[0]?.ssh_authorized_keys).toEqual([FULL.ssh.publicKey]);
    for (const file of config.write_files) expect(file.owner, file.path).toBe('root:root');
    const kubernetesFiles = config.write_files.filter((file) => /^\/etc\/(kubernetes|kiln|containerd)\/|^\/usr\/local\/sbin\//.test(file.path));
    expect(kubernetesFiles.map((file) => file.path)).toEqual(
      expect.arrayContaining(['/etc/kubernetes/kiln/audit-policy.yaml', '/etc/kubernetes/kiln/admission-configuration.yaml', '/etc/kiln/kubeadm-init.yaml.tmpl']),
    );
    for (const file of kubernetesFiles) expect(['0600', '0700'], file.path).toContain(file.permissions);
  });

  it('never embeds private keys or tokens, and fetches join material from SSM at boot', () => {
    for (const [role, userData] of [...allUserData(SMALLEST), ...allUserData(FULL)]) {
      expect(userData, role).not.toMatch(/PRIVATE KEY/);
      expect(userData, role).not.toMatch(/\b[a-z0-9]{6}\.[a-z0-9]{16}\b/);
      expect(userData, role).not.toContain(FULL.encryption.atRest.key ?? 'no-key');
      expect(userData, role).toContain('aws ssm get-parameter --region "$REGION" --with-decryption');
      expect(userData, role).toContain('/kiln/cl_test/');
    }
  });

  it('writes the discovery kubeconfig a join reads from the API host, the cluster CA and the join token Kiln published last', () => {
    for (const [role, pool] of [['control-plane', undefined], ['worker', 'general']] as const) {
      const files = cloudConfig('cl_test', FULL, role, pool).write_files as WrittenFile[];
      const template = files.find((file) => file.path === '/etc/kiln/discovery.conf.tmpl');
      expect(template?.permissions, role).toBe('0600');
      const kubeconfig = parse(template?.content ?? '') as { clusters: { cluster: Record<string, string> }[]; users: { user: Record<string, string> }[] };
      expect(kubeconfig.clusters[0]?.cluster).toEqual({ server: 'https://@KILN_API_HOST@:6443', 'certificate-authority-data': '@KILN_CA_DATA@' });
      expect(kubeconfig.users[0]?.user).toEqual({ token: '@KILN_BOOTSTRAP_TOKEN@' });
      const script = files.find((file) => file.path === '/usr/local/sbin/kiln-bootstrap')?.content ?? '';
      expect(script).toContain(`CA_DATA="$(parameter "/kiln/cl_test/${role}/cluster-ca" | base64 -w0)"`);
      expect(script).toContain(`TOKEN="$(parameter "/kiln/cl_test/${role}/join-token")"`);
      expect(script).toContain('-e "s|@KILN_CA_DATA@|$CA_DATA|g"');
      expect(script).toContain('render_template /etc/kiln/discovery.conf.tmpl /run/kiln/discovery.conf');
      // Rendered before kubeadm runs, into /run, which the script removes when it ends.
      expect(script.indexOf('render_template /etc/kiln/discovery.conf.tmpl')).toBeLessThan(script.lastIndexOf('kubeadm join --config'));
      expect(script).not.toContain('ca-cert-hash');
    }
  });

  it('gives workers only the worker path and no control plane material', () => {
    const worker = renderUserData('cl_test', FULL, 'worker', 'batch');
    expect(worker).toContain('/kiln/cl_test/worker/join-token');
    expect(worker).not.toContain('/kiln/cl_test/control-plane');
    expect(worker).not.toContain('audit-policy');
    expect(worker).toContain('kiln.dev/pool=batch');
  });

  it('pins kubelet, kubeadm and kubectl to the default release from pkgs.k8s.io when the order names no version', () => {
    const userData = renderUserData('cl_test', FULL, 'worker', 'general');
    const patch = kubernetesReleaseOf(DEFAULT_KUBERNETES_VERSION)?.patch.slice(1) ?? 'missing';
    expect(userData).toContain(`https://pkgs.k8s.io/core:/stable:/v${DEFAULT_KUBERNETES_VERSION}/deb/`);
    expect(userData).toContain(`kubelet=${patch}-1.1 kubeadm=${patch}-1.1 kubectl=${patch}-1.1`);
    expect(userData).toContain('SystemdCgroup = true');
  });

  it.each(KUBERNETES_RELEASES)('runs containerd with the pause image kubeadm $minor names', (release) => {
    const spec = ClusterSpec.parse({ ...SMALLEST, kubernetesVersion: release.minor });
    const files = cloudConfig('cl_test', spec, 'worker', 'default').write_files as WrittenFile[];
    expect(files.find((file) => file.path === '/etc/containerd/config.toml')?.content).toContain(`sandbox_image = "${release.pauseImage}"`);
    expect(renderUserData('cl_test', spec, 'worker', 'default')).toContain(`pkgs.k8s.io/core:/stable:/v${release.minor}/deb/`);
  });

  it('gives each machine its EC2 provider ID from the instance metadata and runs the SSM agent, pinned', () => {
    for (const [role, pool] of [['control-plane', undefined], ['worker', 'general']] as const) {
      const userData = renderUserData('cl_test', FULL, role, pool);
      expect(userData).toContain('PROVIDER_ID="aws:///$(cloud-init query v1.availability_zone)/$(cloud-init query v1.instance_id)"');
      expect(userData).toMatch(/- name: provider-id\n\s+value: "@KILN_PROVIDER_ID@"/);
      expect(userData).toContain(`/amazon-ssm-$REGION/${SSM_AGENT_VERSION}/debian_$ARCH/amazon-ssm-agent.deb`);
      expect(userData).toContain('systemctl enable --now amazon-ssm-agent');
    }
  });

  it('installs security updates inside the maintenance window and leaves the reboot to kured', () => {
    expect(maintenanceSchedule(FULL)).toEqual({ upgradeCalendar: 'Sat,Sun *-*-* 22:30:00 UTC', randomizedDelayMinutes: 45 });
    const files = (cloudConfig('cl_test', SMALLEST, 'worker', 'default').write_files as WrittenFile[]).map((file) => file.content).join('\n');
    expect(files).toContain('APT::Periodic::Unattended-Upgrade "1";');
    expect(files).toContain('Unattended-Upgrade::Automatic-Reboot "false";');
    expect(files).not.toContain('Automatic-Reboot "true"');
    expect(files).not.toContain('Automatic-Reboot-Time');
  });

  it('hardens the machine from runcmd before anything that needs the network, and leaves the join to a unit that retries it', () => {
    for (const [role, pool] of [['control-plane', undefined], ['worker', 'general']] as const) {
      const config = cloudConfig('cl_test', FULL, role, pool);
      // cloud-init installs packages in its final stage before runcmd, and never again after a failure.
      expect(Object.keys(config), role).not.toEqual(expect.arrayContaining(['packages']));
      expect(config.package_update, role).toBeUndefined();
      expect(config.package_upgrade, role).toBeUndefined();
      const runcmd = (config.runcmd as unknown[]).map(String);
      expect(runcmd.join('\n'), role).not.toMatch(/\b(aws|curl|apt-get|kubeadm)\b/);
      const start = runcmd.indexOf('systemctl enable --now --no-block kiln-bootstrap.service');
      expect(start, role).toBe(runcmd.length - 1);
      expect(runcmd.indexOf('sysctl --system'), role).toBeGreaterThan(runcmd.indexOf('modprobe br_netfilter'));
      expect(runcmd.indexOf('sshd -t && systemctl reload ssh'), role).toBeLessThan(start);
      const files = config.write_files as WrittenFile[];
      const unit = files.find((file) => file.path === '/etc/systemd/system/kiln-bootstrap.service')?.content ?? '';
      for (const line of ['ExecStart=/usr/local/sbin/kiln-bootstrap', 'Restart=on-failure', 'RestartSec=15s', 'RestartPreventExitStatus=124', 'StartLimitIntervalSec=0', 'WantedBy=multi-user.target', `Environment=KILN_JOIN_DEADLINE_SECONDS=${FULL.nodeHealth.nodeStartupTimeoutMinutes * 60}`]) {
        expect(unit.split('\n'), role).toContain(line);
      }
      // The file modes kubeadm leaves are tightened by the unit's script, after kubeadm.
      const script = files.find((file) => file.path === '/usr/local/sbin/kiln-bootstrap')?.content ?? '';
      expect(script.indexOf('chmod 600 /var/lib/kubelet/config.yaml'), role).toBeGreaterThan(script.lastIndexOf('kubeadm join --config'));
    }
  });

  it('refuses a pool the order does not have', () => {
    expect(() => renderUserData('cl_test', SMALLEST, 'worker', 'missing')).toThrow(/missing/);
  });
});

describe('the KMS v2 plugin on control planes', () => {
  const filesOf = (spec: ClusterSpec, role: 'control-plane' | 'worker') =>
    (parse(renderUserData('cl_test', spec, role, role === 'worker' ? 'default' : undefined, { kmsPluginImage: PLUGIN_IMAGE })) as { write_files: WrittenFile[] }).write_files;

  it('runs as a static pod whose key the machine fills in at boot, before kubeadm starts the API server', () => {
    const files = filesOf(KMS, 'control-plane');
    const template = files.find((file) => file.path === '/etc/kiln/aws-encryption-provider.yaml.tmpl');
    if (template === undefined) throw new Error('no KMS plugin template');
    expect(template.permissions).toBe('0600');
    const pod = new Pod(parse(template.content) as IPod);
    pod.validate();
    expect(pod.spec?.hostNetwork).toBe(true);
    // The image the operator built and named: the project publishes none.
    expect(pod.spec?.containers[0]?.image).toBe(PLUGIN_IMAGE);
    expect(pod.spec?.containers[0]?.command).toEqual([
      '/aws-encryption-provider',
      '--key=<kms-key-arn>',
      '--region=eu-west-1',
      '--listen=/var/run/kmsplugin/socket.sock',
      '--health-port=127.0.0.1:8083',
    ]);
    // Its health and metrics port listens only where the kubelet's probe asks, not on the machine's VPC address.
    expect(pod.spec?.containers[0]?.livenessProbe?.httpGet).toMatchObject({ host: '127.0.0.1', port: 8083, path: '/healthz' });
    const script = files.find((file) => file.path === '/usr/local/sbin/kiln-bootstrap')?.content ?? '';
    const fill = script.indexOf('/cl_test/control-plane/kms-key-arn');
    expect(fill).toBeGreaterThan(0);
    expect(script.indexOf('/etc/kubernetes/manifests/aws-encryption-provider.yaml')).toBeGreaterThan(fill);
    expect(script.indexOf('kubeadm init')).toBeGreaterThan(script.indexOf('/etc/kubernetes/manifests/aws-encryption-provider.yaml'));

    // kubeadm mounts the socket into the API server and accepts the manifest it finds in place.
    const init = parse(files.find((file) => file.path === '/etc/kiln/kubeadm-init.yaml.tmpl')?.content.split('\n---\n')[0] ?? '') as { nodeRegistration: { ignorePreflightErrors?: string[] } };
    expect(init.nodeRegistration.ignorePreflightErrors).toEqual(['DirAvailable--etc-kubernetes-manifests']);
    const kubeadm = files.find((file) => file.path === '/etc/kiln/kubeadm-init.yaml.tmpl')?.content ?? '';
    expect(kubeadm).toContain('hostPath: /var/run/kmsplugin');
  });

  it('cannot be rendered without the image Kiln is configured with', () => {
    expect(() => renderUserData('cl_test', KMS, 'control-plane')).toThrow(/KILN_KMS_PLUGIN_IMAGE/);
  });

  it('is nowhere without the KMS provider, and never on workers', () => {
    for (const files of [filesOf(SMALLEST, 'control-plane'), filesOf(KMS, 'worker')]) {
      expect(files.map((file) => file.path)).not.toContain('/etc/kiln/aws-encryption-provider.yaml.tmpl');
      expect(files.map((file) => file.content).join('\n')).not.toContain('kmsplugin');
    }
  });
});

describe('the admission configuration on control planes', () => {
  const filesOf = (spec: ClusterSpec, role: 'control-plane' | 'worker') =>
    (parse(renderUserData('cl_test', spec, role, role === 'worker' ? 'default' : undefined, { kmsPluginImage: PLUGIN_IMAGE })) as { write_files: WrittenFile[] }).write_files;

  it('is written at boot as the update workflow publishes it, with the script that replaces it later; workers have neither', () => {
    const spec = ClusterSpec.parse({ ...SMALLEST, podSecurity: { enforce: 'baseline', warn: 'restricted' } });
    const files = filesOf(spec, 'control-plane');
    expect(files.find((file) => file.path === PATHS.admissionConfig)?.content).toBe(admissionConfigurationFile(spec));
    expect(files.find((file) => file.path === ADMISSION_CONFIG_SCRIPT)).toMatchObject({ permissions: '0700', content: admissionConfigScript(spec) });
    expect(admissionConfigurationFile(spec)).toContain('enforce: baseline');
    expect(filesOf(spec, 'worker').map((file) => file.path)).not.toEqual(expect.arrayContaining([PATHS.admissionConfig]));
    expect(filesOf(spec, 'worker').map((file) => file.path)).not.toContain(ADMISSION_CONFIG_SCRIPT);
  });
});

describe('sshd drop-in', () => {
  it('passes sshd -t', () => {
    const result = validateSshdDropIn(renderSshdConfig());
    expect(result, result.output).toMatchObject({ ok: true });
  });

  it('is rejected by sshd -t when broken, so the check can fail', () => {
    expect(validateSshdDropIn(`${renderSshdConfig()}Ciphers no-such-cipher\n`).ok).toBe(false);
  });

  it('allows public keys only', () => {
    const text = renderSshdConfig();
    for (const line of ['PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PermitRootLogin no', 'PubkeyAuthentication yes', 'AuthenticationMethods publickey', 'MaxAuthTries 3', 'X11Forwarding no', 'AllowAgentForwarding no']) {
      expect(text.split('\n')).toContain(line);
    }
  });
});
