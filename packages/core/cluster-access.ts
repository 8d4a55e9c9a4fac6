/** What a kubeconfig Kiln issues may do in the cluster. */
export const KUBECONFIG_ACCESS = ['admin', 'read-only'] as const;
export type KubeconfigAccess = (typeof KUBECONFIG_ACCESS)[number];

/**
 * The longest a kubeconfig lives, by access. Kubernetes cannot revoke a client certificate before it expires, so
 * cluster-admin is held to an hour (as Kiln's own certificates); read-only, which can change nothing and read no
 * Secrets, to a working day, for dashboards and on-call.
 */
export const KUBECONFIG_MAX_MINUTES: Readonly<Record<KubeconfigAccess, number>> = { admin: 60, 'read-only': 720 };

/** The group a kubeconfig's certificate is in, by access: the cluster binds `kiln:admins` to cluster-admin, `kiln:viewers` to `view` and Nodes. */
export const KUBECONFIG_GROUPS: Readonly<Record<KubeconfigAccess, string>> = { admin: 'kiln:admins', 'read-only': 'kiln:viewers' };

/** The certificate's user: the API key that asked, so the cluster's audit log names it (`unlisted` for keys from before key ids). */
export const kubeconfigUser = (keyId: string | undefined): string => `kiln:key:${keyId ?? 'unlisted'}`;
