/** A Kubernetes or kubeadm object as Kiln renders it: plain data with its kind. */
export type KubeObject = Record<string, unknown> & { apiVersion: string; kind: string };
