import { expect } from 'vitest';
import { isRecord } from '#core';

/**
 * What a tenant reads about failures and changes must name none of Kiln's own identifiers (issue 32): no ARN at all in
 * an operation's error, a cluster's reason or its conditions, and neither Kiln's account id nor an ARN in it anywhere in
 * an event's data (an event may repeat the tenant's own role or key ARN from the order).
 */
export function expectNothingOfKilns(value: unknown, kilnAccountId: string, where: string): void {
  const anyArn = /arn:aws[a-z-]*:/;
  const kilnArn = new RegExp(`arn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:${kilnAccountId}`);
  const check = (subtree: unknown, what: string, strict: boolean) => {
    if (subtree === undefined) return;
    const text = JSON.stringify(subtree);
    expect(text, `${what} in ${where} names Kiln's account`).not.toContain(kilnAccountId);
    expect(text, `${what} in ${where} names an ARN`).not.toMatch(strict ? anyArn : kilnArn);
  };
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (!isRecord(node)) return;
    if (typeof node.type === 'string' && isRecord(node.data) && typeof node.id === 'string' && node.id.startsWith('evt_')) check(node.data, `event ${node.type}`, false);
    if (Array.isArray(node.steps) && typeof node.state === 'string') check(node.error, 'an operation error', true);
    if (isRecord(node.status) && typeof node.status.phase === 'string') {
      check(node.status.reason, 'a cluster reason', true);
      check(node.status.conditions, 'a cluster condition', true);
    }
    for (const inner of Object.values(node)) visit(inner);
  };
  visit(value);
}
