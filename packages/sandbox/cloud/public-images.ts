import { createHash } from 'node:crypto';

/**
 * The public images the sandbox's EC2 lists, and DescribeImages' filtering as the cluster program's `aws.ec2.getAmi`
 * uses it. Debian publishes its official images from its own account, named `debian-<release>-<arch>-<build>`
 * (Debian's debian-cloud-images, src/debian_cloud_images/images/publicinfo.py ImagePublicType.release, read in the
 * GoCarrot/debian-cloud-images mirror @04b41d7d); releases out of support stay listed, as Debian's do. The builds
 * below are the sandbox's own, not real image ids.
 */
export interface PublicImage {
  imageId: string;
  name: string;
  ownerId: string;
  architecture: 'x86_64' | 'arm64';
  creationDate: string;
  rootDeviceName: string;
  rootDeviceType: 'ebs';
  virtualizationType: 'hvm';
}

const DEBIAN = '136693071363';

const DEBIAN_BUILDS: readonly { release: string; build: string; created: string }[] = [
  { release: '12', build: '20260110-2353', created: '2026-01-10T11:02:31.000Z' },
  { release: '12', build: '20260711-2541', created: '2026-07-11T10:47:05.000Z' },
  { release: '13', build: '20260516-2470', created: '2026-05-16T10:58:03.000Z' },
  { release: '13', build: '20260711-2541', created: '2026-07-11T11:15:40.000Z' },
  { release: '13', build: '20261121-2674', created: '2026-11-21T12:30:12.000Z' },
];

export const PUBLIC_IMAGES: readonly PublicImage[] = DEBIAN_BUILDS.flatMap(({ release, build, created }) =>
  (['amd64', 'arm64'] as const).map((arch): PublicImage => {
    const name = `debian-${release}-${arch}-${build}`;
    return {
      imageId: `ami-${createHash('sha256').update(name).digest('hex').slice(0, 17)}`,
      name,
      ownerId: DEBIAN,
      architecture: arch === 'amd64' ? 'x86_64' : 'arm64',
      creationDate: created,
      rootDeviceName: '/dev/xvda',
      rootDeviceType: 'ebs',
      virtualizationType: 'hvm',
    };
  }),
);

/** EC2 filter values match with `*` (any run of characters) and `?` (one character), case-sensitively. */
function wildcard(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

const FILTERED_FIELDS: Readonly<Record<string, (image: PublicImage) => string>> = {
  name: (image) => image.name,
  architecture: (image) => image.architecture,
  'root-device-type': (image) => image.rootDeviceType,
  'virtualization-type': (image) => image.virtualizationType,
  'owner-id': (image) => image.ownerId,
};

export interface ImageQuery {
  owners?: string[];
  mostRecent?: boolean;
  filters?: { name: string; values: string[] }[];
}

/**
 * DescribeImages lists no image its owner has deregistered: new instances can no longer launch from it
 * (awsdocs/amazon-ec2-user-guide, "Deregister your AMI"). `withdrawn` names the ones Debian took back.
 */
function listed(withdrawn: readonly string[]): readonly PublicImage[] {
  return PUBLIC_IMAGES.filter((image) => !withdrawn.includes(image.name));
}

/**
 * `aws.ec2.getAmi` as terraform-provider-aws answers it (internal/service/ec2/ec2_ami_data_source.go
 * dataSourceAMIRead): DescribeImages with the owners and filters, then no match is an error, several are one unless
 * `most_recent` picks the newest creation date.
 */
export function findImage(query: ImageQuery, withdrawn: readonly string[] = []): PublicImage {
  const owners = query.owners ?? [];
  for (const owner of owners) {
    if (!/^\d{12}$/.test(owner)) throw new Error(`the sandbox EC2 has no model of the image owner alias ${owner}`);
  }
  const filters = (query.filters ?? []).map((filter) => {
    const field = FILTERED_FIELDS[filter.name];
    if (field === undefined) throw new Error(`the sandbox EC2 has no model of the image filter ${filter.name}`);
    const patterns = filter.values.map(wildcard);
    return (image: PublicImage) => patterns.some((pattern) => pattern.test(field(image)));
  });
  const images = listed(withdrawn).filter((image) => (owners.length === 0 || owners.includes(image.ownerId)) && filters.every((matches) => matches(image)));
  if (images.length === 0) throw new Error('Your query returned no results. Please change your search criteria and try again.');
  if (images.length > 1 && query.mostRecent !== true) {
    throw new Error('Your query returned more than one result. Please try a more specific search criteria, or set `most_recent` attribute to true.');
  }
  return images.reduce((newest, image) => (image.creationDate > newest.creationDate ? image : newest));
}
