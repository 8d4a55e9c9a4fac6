import type { ClusterSpec } from '#core';
import { CHARTS, helmChart } from './charts.ts';
import type { Manifest } from './kube.ts';

/** kured's day names (cmd/kured --reboot-days). */
const KURED_DAYS: Record<ClusterSpec['maintenance']['window']['days'][number], string> = {
  mon: 'mo',
  tue: 'tu',
  wed: 'we',
  thu: 'th',
  fri: 'fr',
  sat: 'sa',
  sun: 'su',
};

function clock(minutes: number): string {
  const wrapped = ((minutes % 1440) + 1440) % 1440;
  return `${String(Math.floor(wrapped / 60)).padStart(2, '0')}:${String(wrapped % 60).padStart(2, '0')}`;
}

/** The reboot window kured keeps: the order's maintenance window, in UTC (an end before the start wraps past midnight). */
export function rebootWindow(spec: ClusterSpec): { rebootDays: string[]; startTime: string; endTime: string; timeZone: 'UTC' } {
  const { days, start, durationMinutes } = spec.maintenance.window;
  const [hours = 0, minutes = 0] = start.split(':').map(Number);
  const startMinutes = hours * 60 + minutes;
  return { rebootDays: days.map((day) => KURED_DAYS[day]), startTime: clock(startMinutes), endTime: clock(startMinutes + durationMinutes), timeZone: 'UTC' };
}

/**
 * kured reboots the machines unattended upgrades left needing it
 * (/var/run/reboot-required), one node at a time under its lock, cordoned and
 * drained first, only inside the maintenance window, control plane nodes
 * included. A machine that does not come back healthy is the health loop's
 * to replace. It runs privileged in kube-system (nsenter into the host to
 * reboot), the only namespace Pod Security lets do that.
 */
export function kuredObjects(spec: ClusterSpec): Manifest[] {
  const window = rebootWindow(spec);
  return [
    helmChart('kured', CHARTS.kured, {
      targetNamespace: 'kube-system',
      values: {
        configuration: {
          ...window,
          period: '5m',
          concurrency: 1,
          // Evictions respect PodDisruptionBudgets; a drain stuck past this gives the node back uncordoned instead of rebooting it.
          drainTimeout: '30m',
          // A node that took the lock and never finished frees it after this, so one lost machine cannot stop all reboots.
          lockTtl: '2h',
          rebootSentinel: '/var/run/reboot-required',
        },
        // Empty tolerations make the chart tolerate the control-plane taint itself; naming them keeps that explicit.
        tolerations: [
          { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
          { key: 'node-role.kubernetes.io/master', operator: 'Exists', effect: 'NoSchedule' },
        ],
      },
      readiness: { crds: [], workloads: [{ kind: 'DaemonSet', namespace: 'kube-system', name: 'kured' }] },
    }),
  ];
}
