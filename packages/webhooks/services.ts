import type { Logger } from '#core';
import type { SecretSealer } from '#encryption';
import type { KilnStore } from '#store';
import type { AddressPolicy } from './address.ts';

/** What the sender uses of Kiln's services (functions/services.ts builds them): it needs no more of the API's package. */
export interface WebhookServices {
  store: KilnStore;
  /** Opens the endpoint's secrets to sign with. */
  sealer: SecretSealer;
  log: Logger;
  /** Where webhooks may go; production's policy when absent. */
  webhooks?: AddressPolicy;
}
