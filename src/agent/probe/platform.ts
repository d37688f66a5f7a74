/**
 * The OS platform as payload requirements name it, from os-release. Pure.
 *
 * One name per family and major version, so that a payload built for a
 * release line asks for one word: Red Hat Enterprise Linux and its rebuilds
 * (CentOS, Rocky, AlmaLinux, Oracle Linux, Scientific Linux, anything whose
 * ID_LIKE says rhel) are `el` + major (`el9`); Amazon Linux is `amzn` +
 * version (`amzn2023`, not el); Ubuntu keeps year and month (`ubuntu22.04`),
 * since its releases are not numbered by major; every other distribution is
 * its ID + major (`debian12`, `fedora40`, `sles15`, `opensuse-leap15`), or
 * its ID alone when it has no VERSION_ID (`debian` testing, `arch`).
 */
import { osReleaseValue } from './inventory-parse.js';

const EL = new Set(['rhel', 'centos', 'rocky', 'almalinux', 'ol', 'scientific', 'cloudlinux', 'eurolinux', 'virtuozzo', 'navylinux', 'circle']);

/** The platform name of an os-release text, or null when it has no ID. */
export function platformOf(osRelease: string | null): string | null {
  if (osRelease === null) return null;
  const id = osReleaseValue(osRelease, 'ID')?.toLowerCase().replace(/[^a-z0-9._-]/g, '');
  if (!id) return null;
  const like = (osReleaseValue(osRelease, 'ID_LIKE') ?? '').toLowerCase().split(/\s+/);
  const version = osReleaseValue(osRelease, 'VERSION_ID')?.replace(/[^0-9.]/g, '') ?? '';
  const major = version.split('.')[0] ?? '';
  if (id === 'amzn') return `amzn${version}`;
  if (id === 'ubuntu') return `ubuntu${version}`;
  if (EL.has(id) || (like.includes('rhel') && id !== 'fedora')) return major ? `el${major}` : 'el';
  return `${id}${major}`;
}
