export * from './cloud-init.ts';
export * from './kubeadm.ts';
export * from './pki.ts';
export * from './ssh-key.ts';
export * from './sshd.ts';
export * from './machine-secrets.ts';
export * from './encryption-config.ts';
export * from './machine-commands.ts';
