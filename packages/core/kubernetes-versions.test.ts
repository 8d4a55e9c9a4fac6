import { describe, expect, it } from 'vitest';
import {
  ADDON_RELEASES,
  CIS_PROFILES,
  DEFAULT_KUBERNETES_VERSION,
  END_OF_LIFE_NOTICE_DAYS,
  KUBERNETES_RELEASES,
  MACHINE_OS_RELEASES,
  addonsBehind,
  kubernetesReleaseOf,
  kubernetesSupport,
  kubernetesVersionProblem,
  machineOsProblem,
  machineOsReleaseOf,
  offeredKubernetesReleases,
  versionSupportConditions,
} from './kubernetes-versions.ts';

/** The day the table was last reviewed against upstream. */
const REVIEWED = new Date('2026-11-29T12:00:00Z');

function day(date: string): Date {
  return new Date(`${date}T12:00:00Z`);
}

function conditionsOf(minor: string, on: Date): Record<string, string> {
  return Object.fromEntries(versionSupportConditions(minor, on).map((condition) => [condition.type, `${condition.status}/${condition.reason}`]));
}

describe('the Kubernetes version table', () => {
  it('pins for every minor a patch release of that minor, its pause image and a CIS profile the scorer has', () => {
    for (const release of KUBERNETES_RELEASES) {
      expect(release.patch).toMatch(new RegExp(`^v${release.minor.replace('.', '\\.')}\\.\\d+$`));
      expect(release.pauseImage).toMatch(/^registry\.k8s\.io\/pause:\d+\.\d+(\.\d+)?(@sha256:[0-9a-f]{64})?$/);
      expect(CIS_PROFILES[release.cisProfile]).toBeDefined();
      expect(release.released < release.maintenanceModeFrom && release.maintenanceModeFrom < release.endOfLife).toBe(true);
    }
  });

  it('pins every add-on to one exact release, never a range or a float', () => {
    for (const addon of Object.values(ADDON_RELEASES)) {
      expect(addon.version).toMatch(/^v?\d+\.\d+\.\d+(-[\w.]+)?$/);
    }
  });

  it('offers, on the day it was reviewed, exactly the maintained minors every add-on supports', () => {
    const offered = offeredKubernetesReleases(REVIEWED);
    expect(offered.map((release) => release.minor)).toEqual(['1.35']);
    for (const release of offered) {
      expect(release.endOfLife > '2026-11-29').toBe(true);
      expect(addonsBehind(release.minor)).toEqual([]);
    }
    expect(offered.map((release) => release.minor)).toContain(DEFAULT_KUBERNETES_VERSION);
  });

  it('defaults to the newest minor every add-on supports', () => {
    const supported = KUBERNETES_RELEASES.filter((release) => addonsBehind(release.minor).length === 0).map((release) => release.minor);
    expect(DEFAULT_KUBERNETES_VERSION).toBe(supported.at(-1));
  });

  it('says which add-ons hold a maintained minor back', () => {
    const support = kubernetesSupport('1.36', REVIEWED);
    expect(support.kind).toBe('addonsBehind');
    expect(support.kind === 'addonsBehind' ? support.addons.map((addon) => addon.name) : []).toEqual(expect.arrayContaining(['Kyverno', 'Tetragon']));
    expect(kubernetesVersionProblem('1.36', REVIEWED)).toMatch(/^Kubernetes 1\.36 is not supported by .*Kyverno 3\.9\.1 \(1\.33 to 1\.35\).*, which Kiln installs\. Kiln offers Kubernetes 1\.35 \(the default\)\.$/);
    expect(kubernetesVersionProblem('1.34', day('2026-10-27'))).toMatch(/^Kubernetes 1\.34 is not supported by kured 6\.1\.0 \(1\.35 to 1\.37\) and helm-controller v0\.17\.7 \(1\.35 to 1\.36\)/);
  });

  it('refuses a minor past its end of life, naming the date and what is offered', () => {
    expect(kubernetesVersionProblem('1.33', REVIEWED)).toBe(
      'Kubernetes 1.33 reached its end of life on 2026-06-28 and receives no security fixes. Kiln offers Kubernetes 1.35 (the default).',
    );
    expect(kubernetesSupport('1.34', day('2026-10-27')).kind).not.toBe('endOfLife');
    expect(kubernetesSupport('1.34', day('2026-10-28')).kind).toBe('endOfLife');
  });

  it('refuses minors it has no facts for', () => {
    expect(kubernetesVersionProblem('1.99', REVIEWED)).toMatch(/^Kubernetes 1\.99 is not a version Kiln knows\. Kiln offers/);
    expect(kubernetesVersionProblem('1.35', REVIEWED)).toBeUndefined();
  });

  it('stops offering a minor the day after its end of life, without a release of Kiln', () => {
    expect(offeredKubernetesReleases(day('2027-02-28')).map((release) => release.minor)).toContain('1.35');
    expect(offeredKubernetesReleases(day('2027-03-01')).map((release) => release.minor)).not.toContain('1.35');
    expect(kubernetesVersionProblem('1.35', day('2027-03-01'))).toMatch(/^Kubernetes 1\.35 reached its end of life on 2027-02-28/);
  });

  it('tells a running cluster when its end of life is near, and when it has passed', () => {
    expect(conditionsOf('1.35', REVIEWED)).toEqual({ KubernetesVersionEndOfLifeSoon: 'False/Maintained', KubernetesVersionUnsupported: 'False/Maintained' });
    const noticeStarts = new Date(Date.parse('2027-02-28T12:00:00Z') - END_OF_LIFE_NOTICE_DAYS * 86_400_000);
    expect(conditionsOf('1.35', new Date(noticeStarts.getTime() - 86_400_000))).toMatchObject({ KubernetesVersionEndOfLifeSoon: 'False/Maintained' });
    expect(conditionsOf('1.35', noticeStarts)).toEqual({ KubernetesVersionEndOfLifeSoon: 'True/EndOfLifeSoon', KubernetesVersionUnsupported: 'False/Maintained' });
    expect(conditionsOf('1.35', day('2027-02-28'))).toMatchObject({ KubernetesVersionUnsupported: 'False/Maintained' });
    expect(conditionsOf('1.35', day('2027-03-01'))).toEqual({ KubernetesVersionEndOfLifeSoon: 'False/EndOfLifeReached', KubernetesVersionUnsupported: 'True/EndOfLife' });
    expect(conditionsOf('1.33', REVIEWED)).toMatchObject({ KubernetesVersionUnsupported: 'True/EndOfLife' });
    expect(versionSupportConditions('1.33', REVIEWED).find((condition) => condition.status === 'True')?.message).toBe(
      'Kubernetes 1.33 reached its end of life on 2026-06-28 and receives no security fixes. Upgrade to 1.35.',
    );
    expect(versionSupportConditions('1.99', REVIEWED)).toEqual([]);
  });

  it('holds a minor back when the containerd of the machines\' OS does not run it', () => {
    const support = kubernetesSupport('1.36', REVIEWED);
    expect(support.kind === 'addonsBehind' ? support.addons.map((component) => component.name) : []).toContain('containerd (Debian 13)');
    expect(kubernetesVersionProblem('1.37', REVIEWED)).toContain('containerd (Debian 13) 1.7.24~ds1 (1.26 to 1.35)');
    expect(kubernetesSupport('1.35', REVIEWED).kind).toBe('offered');
  });

  // Fails the day Kiln would have nothing to build: the table needs a review against upstream.
  it('offers at least one Kubernetes minor today', () => {
    expect(offeredKubernetesReleases(new Date()).length, 'every offered minor is past its end of life: update the version table and the add-on pins').toBeGreaterThan(0);
  });
});

describe("the machines' OS releases", () => {
  it('dates every release in order and names its own Debian images', () => {
    for (const release of MACHINE_OS_RELEASES) {
      expect(release.released < release.securitySupportEnds && release.securitySupportEnds < release.ltsEnds, release.codename).toBe(true);
      expect(release.image.namePrefix).toBe(`debian-${release.version}`);
      expect(release.prettyName).toBe(`Debian GNU/Linux ${release.version} (${release.codename})`);
    }
  });

  it('builds on the newest release in regular security support, never on one past it', () => {
    expect(machineOsReleaseOf(day('2025-08-08'))?.codename).toBe('bookworm');
    expect(machineOsReleaseOf(day('2025-08-09'))?.codename).toBe('trixie');
    expect(machineOsReleaseOf(REVIEWED)?.codename).toBe('trixie');
    expect(machineOsReleaseOf(day('2028-08-09'))?.codename).toBe('trixie');
    // Debian 12 is still in LTS on 2026-12-07, which is not enough.
    expect(MACHINE_OS_RELEASES.find((release) => release.codename === 'bookworm')?.ltsEnds).toBe('2028-06-30');
    expect(machineOsReleaseOf(day('2028-08-10'))).toBeUndefined();
  });

  it('says why nothing can be built once no release has regular security support', () => {
    expect(machineOsProblem(REVIEWED)).toBeUndefined();
    expect(machineOsProblem(day('2028-08-10'))).toBe(
      'Kiln has no machine operating system in regular security support today (Debian 13 "trixie" had it until 2028-08-09), so it builds no new machine until its version table names a supported release.',
    );
  });

  // Fails the day Kiln could build no machine: the OS table needs a review against Debian.
  it('has a release in regular security support today, whose containerd runs the default minor', () => {
    const os = machineOsReleaseOf(new Date());
    expect(os, 'no Debian release in regular security support: add the next one to MACHINE_OS_RELEASES').toBeDefined();
    const range = os?.containerd.kubernetes;
    const minor = Number(kubernetesReleaseOf(DEFAULT_KUBERNETES_VERSION)?.minor.split('.')[1]);
    expect(minor).toBeGreaterThanOrEqual(Number(range?.oldest.split('.')[1]));
    expect(minor).toBeLessThanOrEqual(Number(range?.newest?.split('.')[1] ?? Number.POSITIVE_INFINITY));
  });
});
