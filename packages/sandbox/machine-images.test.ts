import { describe, expect, it } from 'vitest';
import { ADMISSION_CONFIG_SCRIPT, ENCRYPTION_CONFIG_SCRIPT, ETCD_MEMBER_SCRIPT, PATHS, renderUserData } from '#bootstrap';
import { ClusterSpec, kubernetesReleaseOf } from '#core';
import type { RecordedResource } from './cloud/index.ts';
import { machineImagesOf } from './machine-images.ts';
import { launchTemplate } from './testing.ts';

const spec = ClusterSpec.parse({
  name: 'images',
  region: 'eu-central-1',
  nodePools: [{ name: 'general', size: 1, labels: { team: 'data', 'node-role.kubernetes.io/data': '' }, taints: [{ key: 'dedicated', value: 'data', effect: 'NoSchedule' }] }],
});
const RELEASE = kubernetesReleaseOf(spec.kubernetesVersion)?.patch;
const SSM_CORE = ['ssm:UpdateInstanceInformation', 'ssmmessages:*', 'ec2messages:*'];
const BOOT_SCRIPT = '/usr/local/sbin/kiln-bootstrap';
/** What the JoinConfigurations register: the kubelet sets only labels NodeRestriction lets it (the add-on step sets the others). */
const CONTROL_PLANE_REGISTRATION = { labels: { 'kiln.dev/cluster': 'images' }, taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] };
const RETRIED_BOOT = {
  runs: 'unit',
  unit: 'kiln-bootstrap.service',
  restartsOnFailure: true,
  restartMs: 15_000,
  startLimit: { intervalMs: 0, burst: 5 },
  deadlineMs: spec.nodeHealth.nodeStartupTimeoutMinutes * 60_000,
};
const GENERAL_REGISTRATION = { labels: { 'kiln.dev/cluster': 'images', team: 'data', 'kiln.dev/pool': 'general' }, taints: [{ key: 'dedicated', value: 'data', effect: 'NoSchedule' }] };

function resources(options: { workerActions: string[]; userData?: (role: 'control-plane' | 'worker') => string }): RecordedResource[] {
  const userData = options.userData ?? ((role) => (role === 'control-plane' ? renderUserData('cls_images', spec, 'control-plane') : renderUserData('cls_images', spec, 'worker', 'general')));
  const template = (name: string, role: 'control-plane' | 'worker'): RecordedResource => launchTemplate(name, role, userData(role));
  const policy = (name: string, actions: string[]): RecordedResource => ({
    type: 'aws:iam/rolePolicy:RolePolicy',
    name,
    id: name,
    inputs: { policy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: '*' }] }) },
  });
  return [template('k-cp', 'control-plane'), template('k-pool-general', 'worker'), policy('k-cp', SSM_CORE), policy('k-worker', options.workerActions)];
}

describe('machines as EC2 boots them', () => {
  it('carry their provider ID and answer Run Command when the user data and the role say so', () => {
    expect(machineImagesOf(resources({ workerActions: SSM_CORE }))).toEqual({
      // kubeadm init on the first control plane machine makes the join token with the rendered TTL.
      // Run Command finds only the scripts the user data wrote.
      // The kubelet registers with the labels and taints of its JoinConfiguration, and is the release the user data installs.
      // kube-apiserver reads the AdmissionConfiguration its ClusterConfiguration names, from the files the user data writes.
      controlPlane: {
        providerIdAtBoot: true,
        ssmManaged: true,
        joinTokenTtlMs: 2 * 60 * 60_000,
        joinTokenUsages: ['authentication'],
        scripts: [BOOT_SCRIPT, ENCRYPTION_CONFIG_SCRIPT, ADMISSION_CONFIG_SCRIPT, ETCD_MEMBER_SCRIPT],
        nodeRegistration: CONTROL_PLANE_REGISTRATION,
        kubeletVersion: RELEASE,
        // The API server runs with the --anonymous-auth its ClusterConfiguration renders; joins discover as their JoinConfiguration says.
        apiServerAnonymousAuth: false,
        // Its serving certificate names what kubeadm names plus the certSANs, the API host filled in at boot.
        apiServerCertSans: ['@KILN_API_HOST@', '127.0.0.1'],
        join: expect.objectContaining({ discovery: expect.any(Object) }),
        apiServerAdmission: { configFile: PATHS.admissionConfig, files: expect.objectContaining({ [PATHS.admissionConfig]: expect.stringContaining('kind: PodSecurityConfiguration') as unknown }) as unknown },
        // A systemd unit runcmd starts runs the boot script until it succeeds, up to the order's node startup timeout.
        bootProcedure: RETRIED_BOOT,
        // apt trusts pkgs.k8s.io's Release.key only when it is exactly the Kubernetes package signing key.
        kubernetesAptKeyPin: 'DE15B14486CD377B9E876E1A234654DA9A296436',
      },
      pools: {
        general: {
          providerIdAtBoot: true,
          ssmManaged: true,
          scripts: [BOOT_SCRIPT],
          nodeRegistration: GENERAL_REGISTRATION,
          kubeletVersion: RELEASE,
          join: expect.objectContaining({ discovery: expect.any(Object) }),
          bootProcedure: RETRIED_BOOT,
          kubernetesAptKeyPin: 'DE15B14486CD377B9E876E1A234654DA9A296436',
        },
      },
    });
  });

  it('stay out of SSM when the role cannot register the agent', () => {
    expect(machineImagesOf(resources({ workerActions: ['ssm:GetParameter'] })).pools.general).toMatchObject({ providerIdAtBoot: true, ssmManaged: false, scripts: [BOOT_SCRIPT], nodeRegistration: GENERAL_REGISTRATION, kubeletVersion: RELEASE });
  });

  it('join as their JoinConfiguration says, with the files and parameters the boot script fills it from', () => {
    const { pools } = machineImagesOf(resources({ workerActions: SSM_CORE }));
    const join = pools.general?.join;
    expect(join?.discovery).toEqual({ file: { kubeConfigPath: '/run/kiln/discovery.conf' } });
    expect(Object.keys(join?.files ?? {})).toEqual(['/run/kiln/discovery.conf']);
    expect(join?.files['/run/kiln/discovery.conf']).toContain('token: "@KILN_BOOTSTRAP_TOKEN@"');
    expect(join?.placeholders).toEqual({
      '@KILN_API_HOST@': { parameter: '/kiln/cls_images/worker/api-host', base64: false },
      '@KILN_BOOTSTRAP_TOKEN@': { parameter: '/kiln/cls_images/worker/join-token', base64: false },
      '@KILN_CA_DATA@': { parameter: '/kiln/cls_images/worker/cluster-ca', base64: true },
    });
  });

  it('make the join token with the TTL the InitConfiguration declares', () => {
    const longer = (role: 'control-plane' | 'worker') => renderUserData('cls_images', spec, role, 'general').replace(/ttl: 2h$/m, 'ttl: 1h30m');
    expect(machineImagesOf(resources({ workerActions: SSM_CORE, userData: longer })).controlPlane.joinTokenTtlMs).toBe(90 * 60_000);
  });

  it('have neither when the user data does not set them up', () => {
    const plain = () => '#cloud-config\nwrite_files:\n  - path: /usr/local/sbin/kiln-bootstrap\n    content: "kubeadm join"\n';
    expect(machineImagesOf(resources({ workerActions: SSM_CORE, userData: plain }))).toEqual({
      controlPlane: { providerIdAtBoot: false, ssmManaged: false, scripts: [] },
      pools: { general: { providerIdAtBoot: false, ssmManaged: false, scripts: [] } },
    });
  });
});
