import { z } from 'zod';
import { UsagePeriod } from './event-data.ts';

export const USAGE_GRANULARITIES = ['hour', 'day'] as const;

export const UsageReport = z
  .object({
    from: z.iso.datetime(),
    to: z.iso.datetime(),
    granularity: z.enum(USAGE_GRANULARITIES),
    reportedThrough: z.iso
      .datetime()
      .nullable()
      .describe('Every hour before this is reported (and has had its usage.reported event); later hours are not in `periods` yet. Null before the first machine ran.'),
    periods: z.array(UsagePeriod).describe('Every reported period in [from, to), in order.'),
  })
  .meta({ id: 'UsageReport' });
export type UsageReport = z.infer<typeof UsageReport>;
