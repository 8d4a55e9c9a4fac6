import { createHash } from 'node:crypto';

/** A plain JSON object (not null, not an array), as parsed YAML and JSON give them. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Hex SHA-256 of a text: API keys, idempotency keys and request bodies are kept only as this. */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Whether two values serialise to the same JSON (same members in the same order): orders as parsed, step states. */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * kubernetes-sigs/aws-encryption-provider (release pinned in Kiln's version table, #core ADDON_RELEASES) publishes no
 * image: its cloudbuild.yaml arrived after the v1.33.0 release commit (9024190, 2025-05-08, after d5af2ce of
 * 2025-04-25) and pushes only to its staging registry, and kubernetes/k8s.io registry.k8s.io/images/
 * k8s-staging-aws-encryption-provider holds no images.yaml, so nothing was promoted (the project's issue #147 asks
 * for an official image). Kiln's operator builds it from that release into a registry the machines can pull from and
 * names it, pinned by digest (KILN_KMS_PLUGIN_IMAGE); without one, Kiln refuses orders with the kms provider.
 */
export const KMS_PLUGIN_IMAGE_REFERENCE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)+(?::[\w][\w.-]{0,127})?@sha256:[0-9a-f]{64}$/;
