import { describe, expect, it } from 'vitest';
import { KilnError } from '#core';
import { VersionConflictError } from '#store';
import { ifMatching } from './clusters.ts';

const lostRace = () => Promise.reject(new VersionConflictError('cluster', 'cls_1'));

describe('a change that loses a race to another', () => {
  it('is a 409 to retry for a client that named no version', async () => {
    const error: unknown = await ifMatching(undefined, lostRace).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KilnError);
    expect(error).toMatchObject({ code: 'conflict', status: 409, detail: expect.stringContaining('retry') });
  });

  it('is a 412 for one whose If-Match named the version it read', async () => {
    await expect(ifMatching(4, lostRace)).rejects.toMatchObject({ code: 'precondition_failed', status: 412 });
    await expect(ifMatching(4, () => Promise.reject(new Error('other')))).rejects.toThrow('other');
    await expect(ifMatching(4, () => Promise.resolve('done'))).resolves.toBe('done');
  });
});
