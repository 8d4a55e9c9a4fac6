import type { WebhookEndpointRecord } from '#store';

/** The encryption context a webhook secret is sealed under: it opens only for its tenant, endpoint and purpose. */
export function webhookSecretContext(endpoint: Pick<WebhookEndpointRecord, 'tenantId' | 'id'>): Record<string, string> {
  return { tenantId: endpoint.tenantId, webhookEndpointId: endpoint.id, purpose: 'webhook-secret' };
}
