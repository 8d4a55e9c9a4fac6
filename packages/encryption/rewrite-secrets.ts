import { ApiException, type CoreV1Api, type V1SecretList } from '@kubernetes/client-node';

export interface SecretRewritePage {
  /** Where the next page starts; undefined when this was the last page. */
  continueToken: string | undefined;
  rewritten: number;
}

export const DEFAULT_REWRITE_PAGE_SIZE = 100;

async function listPage(core: CoreV1Api, continueToken: string | undefined, limit: number): Promise<V1SecretList> {
  try {
    return await core.listSecretForAllNamespaces({ limit, _continue: continueToken });
  } catch (error) {
    // An expired continue token (410) only costs rewriting some Secrets twice: start over rather than fail the rotation.
    if (continueToken !== undefined && error instanceof ApiException && error.code === 410) return core.listSecretForAllNamespaces({ limit });
    throw error;
  }
}

/**
 * One page of the rotation's "read and replace every Secret": an unchanged replace is enough, because the API
 * server writes an object it read with a key other than its write key, and so stores it under the new key.
 */
export async function rewriteSecretsPage(core: CoreV1Api, continueToken: string | undefined, limit = DEFAULT_REWRITE_PAGE_SIZE): Promise<SecretRewritePage> {
  const page = await listPage(core, continueToken, limit);
  let rewritten = 0;
  for (const secret of page.items) {
    const namespace = secret.metadata?.namespace;
    const name = secret.metadata?.name;
    if (namespace === undefined || name === undefined) continue;
    try {
      await core.replaceNamespacedSecret({ namespace, name, body: secret });
      rewritten++;
    } catch (error) {
      // 409: someone wrote it since the list, so it is already under the write key; 404: it is gone.
      if (error instanceof ApiException && (error.code === 409 || error.code === 404)) continue;
      throw error;
    }
  }
  const next = page.metadata?._continue;
  return { continueToken: next === undefined || next === '' ? undefined : next, rewritten };
}
