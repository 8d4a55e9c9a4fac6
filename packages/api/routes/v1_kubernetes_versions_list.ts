import { type OpenAPIHono, createRoute } from '@hono/zod-openapi';
import { END_OF_LIFE_NOTICE_DAYS, KubernetesVersionList } from '#core';
import { listKubernetesVersions } from '#services';
import type { AppEnv } from '../context.ts';
import { problems } from '../schemas.ts';
import { needs } from '../scopes.ts';

const route = createRoute({
  method: 'get',
  path: '/v1/kubernetes-versions',
  operationId: 'listKubernetesVersions',
  tags: ['Kubernetes versions'],
  summary: 'List the Kubernetes versions Kiln offers',
  description: [
    'The Kubernetes minors a new cluster may run today, oldest first: maintained upstream and supported by every add-on Kiln installs.',
    'Each names the patch release machines install and its end-of-life date; exactly one is the default for orders that name no version.',
    `A running cluster on a minor within ${END_OF_LIFE_NOTICE_DAYS} days of its end of life gets the condition KubernetesVersionEndOfLifeSoon, and after it KubernetesVersionUnsupported.`,
    'Any valid token may read this; it holds no tenant data.',
  ].join(' '),
  ...needs('read-only'),
  responses: {
    200: {
      description: 'The offered Kubernetes versions.',
      headers: { 'Cache-Control': { description: 'The list changes at most once a day.', schema: { type: 'string' } } },
      content: { 'application/json': { schema: KubernetesVersionList } },
    },
    ...problems(401),
  },
});

export function registerV1KubernetesVersionsList(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, (c) => c.json(listKubernetesVersions(), 200, { 'cache-control': 'private, max-age=300' }));
}
