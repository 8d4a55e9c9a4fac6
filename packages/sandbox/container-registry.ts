import { createHash } from 'node:crypto';

/**
 * The registry Kiln's operator pushes the images Kiln names to (an ECR repository in production), as machines pull
 * from it: a reference pinned by digest resolves only once that image was pushed. The sandbox's kubelets pull the
 * KMS plugin's static pod image from it; the other images machines run are not played.
 */
export class SandboxContainerRegistry {
  private readonly images = new Set<string>();

  push(reference: string): void {
    this.images.add(reference);
  }

  serves(reference: string): boolean {
    return this.images.has(reference);
  }
}

/**
 * Local mode's aws-encryption-provider image (KILN_KMS_PLUGIN_IMAGE): the reference an operator's build of the
 * v1.33.0 release would have once pushed, with a digest made up for the sandbox.
 */
export const LOCAL_KMS_PLUGIN_IMAGE = `registry.kiln.local/aws-encryption-provider:v1.33.0@sha256:${createHash('sha256').update('kiln local aws-encryption-provider v1.33.0').digest('hex')}`;
