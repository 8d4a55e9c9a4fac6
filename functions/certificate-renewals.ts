import { startDueCertificateRenewals } from '#services';
import { services } from './services.ts';

/** Scheduled daily: renews the certificates of clusters whose earliest certificate expires within the renewal threshold. */
export const handler = () => startDueCertificateRenewals(services);
