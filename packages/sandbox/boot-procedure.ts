import { isRecord } from '#core';

/**
 * How a machine runs its boot procedure (the script that ends in `kubeadm init` or `kubeadm join`), as its user data
 * says, and what happens when one run of it fails.
 *
 * - `once`: cloud-init runs it from `runcmd`. cc_runcmd writes the commands to a per-instance script that
 *   cc_scripts_user runs in the final stage; a failure is logged, the module is marked as run (its semaphore is taken
 *   before it runs and not cleared on failure), and nothing runs it again, not even a reboot
 *   (canonical/cloud-init@25.1.4, what Debian 13 ships: cloudinit/config/cc_runcmd.py, cc_scripts_user.py,
 *   cloudinit/helpers.py Runners.run, cloudinit/config/modules.py _run_modules).
 * - `unit`: a systemd service that runs the script, restarted after a failure as its `Restart=` says, every
 *   `RestartSec=`, within the start rate limit (`StartLimitIntervalSec=`/`StartLimitBurst=`), until it succeeds or the
 *   script's own deadline passes (systemd v257, what Debian 13 ships: man/systemd.service.xml Restart=, RestartSec=,
 *   RestartPreventExitStatus=; man/systemd.unit.xml StartLimitIntervalSec=; defaults from src/core/system.conf.in).
 */
export type BootProcedure =
  | { runs: 'once' }
  | {
      runs: 'unit';
      unit: string;
      /** Whether a run that exits non-zero is started again (`Restart=on-failure` or `always`). */
      restartsOnFailure: boolean;
      restartMs: number;
      /** Start rate limiting; `intervalMs` 0 turns it off. */
      startLimit: { intervalMs: number; burst: number };
      /** How long after the machine's first boot the script stops trying (it exits with a status that prevents restarts). */
      deadlineMs?: number;
    };

/** cloud-init's default: what runcmd does. */
export const RUNS_ONCE: BootProcedure = { runs: 'once' };

/** systemd's defaults (src/core/system.conf.in: DefaultRestartSec=100ms, DefaultStartLimitIntervalSec=10s, DefaultStartLimitBurst=5). */
const DEFAULT_RESTART_MS = 100;
const DEFAULT_START_LIMIT = { intervalMs: 10_000, burst: 5 };

/** The environment variable Kiln's unit hands its script: seconds after first boot past which it stops trying. */
export const JOIN_DEADLINE_VARIABLE = 'KILN_JOIN_DEADLINE_SECONDS';

/** A systemd time span (systemd.time(7)): `10`, `10s`, `100ms`, `5min 20s`; unit-less means seconds. */
export function systemdTimeSpanMs(text: string): number | undefined {
  const value = text.trim();
  if (value === 'infinity') return Number.POSITIVE_INFINITY;
  const units: Record<string, number> = { us: 0.001, usec: 0.001, ms: 1, msec: 1, '': 1000, s: 1000, sec: 1000, second: 1000, seconds: 1000, m: 60_000, min: 60_000, minute: 60_000, minutes: 60_000, h: 3_600_000, hr: 3_600_000, hour: 3_600_000, hours: 3_600_000 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]*)\s*/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== value) return undefined;
  let total = 0;
  for (const part of parts) {
    const unit = units[part[2] ?? ''];
    if (unit === undefined) return undefined;
    total += Number(part[1]) * unit;
  }
  return total;
}

/** A unit file's settings, by section: the last assignment of a key wins, as systemd reads single-valued settings. */
function unitSettings(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header !== null) {
      section = header[1] ?? '';
      continue;
    }
    const equals = line.indexOf('=');
    if (equals < 0) continue;
    const key = `${section}.${line.slice(0, equals).trim()}`;
    settings.set(key, [...(settings.get(key) ?? []), line.slice(equals + 1).trim()]);
  }
  return settings;
}

/** `Environment=` assignments (space-separated, optionally double-quoted). */
function environmentOf(values: readonly string[]): Map<string, string> {
  const variables = new Map<string, string>();
  for (const value of values) {
    for (const match of value.matchAll(/"([^"]*)"|(\S+)/g)) {
      const assignment = match[1] ?? match[2] ?? '';
      const equals = assignment.indexOf('=');
      if (equals > 0) variables.set(assignment.slice(0, equals), assignment.slice(equals + 1));
    }
  }
  return variables;
}

/** A runcmd entry as the shell line cc_runcmd writes for it (cloudinit/util.py shellify), split into words. */
function runcmdWords(entry: unknown): string[] {
  if (Array.isArray(entry)) return entry.map(String);
  return typeof entry === 'string' ? entry.split(/\s+/).filter((word) => word !== '') : [];
}

/** The units a runcmd line starts: `systemctl start|restart <unit>…` or `systemctl enable --now <unit>…`. */
function unitsStartedBy(words: readonly string[]): string[] {
  if (words[0] !== 'systemctl' && words[0] !== '/usr/bin/systemctl' && words[0] !== '/bin/systemctl') return [];
  const verb = words.slice(1).find((word) => !word.startsWith('-'));
  const flags = words.filter((word) => word.startsWith('-'));
  const starts = verb === 'start' || verb === 'restart' || (verb === 'enable' && flags.includes('--now'));
  if (!starts) return [];
  const units = words.slice(words.indexOf(verb) + 1).filter((word) => !word.startsWith('-'));
  return units.map((unit) => (unit.includes('.') ? unit : `${unit}.service`));
}

/**
 * How the user data runs the boot script `script`: a systemd unit it writes under /etc/systemd/system and starts from
 * runcmd (whose ExecStart= runs the script), or the script itself from runcmd. Undefined when it runs it neither way.
 */
export function bootProcedureOf(document: unknown, files: readonly { path: string; content: string }[], script: string): BootProcedure | undefined {
  const runcmd = isRecord(document) && Array.isArray(document.runcmd) ? (document.runcmd as unknown[]).map(runcmdWords) : [];
  for (const unit of runcmd.flatMap(unitsStartedBy)) {
    const file = files.find((candidate) => candidate.path === `/etc/systemd/system/${unit}`);
    if (file === undefined) continue;
    const settings = unitSettings(file.content);
    const last = (key: string) => settings.get(key)?.at(-1);
    // ExecStart='s first word, without the prefixes systemd allows (-, @, :, +, !).
    const execStart = (last('Service.ExecStart') ?? '').replace(/^[-@:+!]+/, '').split(/\s+/)[0];
    if (execStart !== script) continue;
    const restart = last('Service.Restart') ?? 'no';
    const restartMs = systemdTimeSpanMs(last('Service.RestartSec') ?? '') ?? DEFAULT_RESTART_MS;
    const interval = last('Unit.StartLimitIntervalSec');
    const burst = last('Unit.StartLimitBurst');
    const deadlineSeconds = environmentOf(settings.get('Service.Environment') ?? []).get(JOIN_DEADLINE_VARIABLE);
    const scriptText = files.find((candidate) => candidate.path === script)?.content ?? '';
    // The deadline is the script's own: it counts only if the script reads it.
    const deadlineMs = deadlineSeconds !== undefined && scriptText.includes(JOIN_DEADLINE_VARIABLE) && /^\d+$/.test(deadlineSeconds) ? Number(deadlineSeconds) * 1000 : undefined;
    return {
      runs: 'unit',
      unit,
      restartsOnFailure: restart === 'on-failure' || restart === 'always',
      restartMs,
      startLimit: {
        intervalMs: interval === undefined ? DEFAULT_START_LIMIT.intervalMs : (systemdTimeSpanMs(interval) ?? DEFAULT_START_LIMIT.intervalMs),
        burst: burst !== undefined && /^\d+$/.test(burst) ? Number(burst) : DEFAULT_START_LIMIT.burst,
      },
      ...(deadlineMs === undefined ? {} : { deadlineMs }),
    };
  }
  if (runcmd.some((words) => words[0] === script)) return RUNS_ONCE;
  return undefined;
}

/** The sandbox runs its clocks faster: a restart waits RestartSec divided by this (kubeadm-join.ts does the same). */
const SANDBOX_CLOCK_SPEEDUP = 25;

/** What follows a failed run: the next start (real time, sped up) or the end of trying, and why. */
export type AfterFailure = { retryAt: number } | { givesUp: string };

/**
 * The runs of one machine's boot procedure: whether a run may start, and what follows a failed one. Starts are
 * rate-limited in systemd's time (each failed run starts RestartSec after the one before: the sandbox's runs take no
 * time), the deadline counts in real time from the machine's launch, as the script reads it from its first boot.
 */
export class BootRuns {
  private starts = 0;
  /** systemd's RateLimit (src/basic/ratelimit.c ratelimit_below): the window's start and the starts in it. */
  private windowBegin: number | undefined;
  private windowStarts = 0;

  constructor(
    private readonly procedure: BootProcedure,
    private readonly launchedAt: Date,
  ) {}

  /** A run is to start now: why it does not (the start limit, or the script's deadline), or undefined. */
  start(now: number): string | undefined {
    const procedure = this.procedure;
    const systemdNow = this.starts * (procedure.runs === 'unit' ? procedure.restartMs : 0);
    this.starts += 1;
    if (procedure.runs === 'once') return undefined;
    const { intervalMs, burst } = procedure.startLimit;
    if (intervalMs > 0 && burst > 0) {
      if (this.windowBegin === undefined || systemdNow - this.windowBegin > intervalMs) {
        this.windowBegin = systemdNow;
        this.windowStarts = 0;
      } else if (this.windowStarts >= burst) {
        return `${procedure.unit}: start request repeated too quickly (StartLimitBurst=${burst} within StartLimitIntervalSec=${intervalMs / 1000}s): no more restarts`;
      }
      this.windowStarts += 1;
    }
    if (procedure.deadlineMs !== undefined && now - this.launchedAt.getTime() >= procedure.deadlineMs) {
      return `${procedure.unit}: no join within ${Math.round(procedure.deadlineMs / 60_000)} minutes of first boot; the script gave up and the unit stays failed`;
    }
    return undefined;
  }

  /** A run failed with `failure`. */
  afterFailure(failure: string, now: number): AfterFailure {
    const procedure = this.procedure;
    // runcmd's failure is logged and nothing runs it again: the machine's console shows the failing command's error.
    if (procedure.runs === 'once') return { givesUp: failure };
    if (!procedure.restartsOnFailure) return { givesUp: `${failure} (${procedure.unit} does not restart on failure)` };
    return { retryAt: now + procedure.restartMs / SANDBOX_CLOCK_SPEEDUP };
  }
}
