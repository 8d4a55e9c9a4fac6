import { deliverWebhooks } from '#webhooks';
import { services } from '../../functions/services.ts';

/**
 * The webhook delivery worker in a process of its own, built from the environment as the Lambda is, running pass
 * after pass until it is killed (the e2e tests kill it mid-burst). KILN_TEST_CLOCK_AHEAD_MS moves its clock past the
 * feed's settling time.
 */
const ahead = Number(process.env.KILN_TEST_CLOCK_AHEAD_MS ?? '0');
process.stdout.write('ready\n');
for (;;) {
  await deliverWebhooks(services, new Date(Date.now() + ahead));
}
