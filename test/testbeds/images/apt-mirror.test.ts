import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HarnessError } from '../../../src/core/errors.ts';
import { parseDeb822Sources, parseOneLineSources, pickSource, readAptSources, resolveDebianMirror } from '../../../src/testbeds/images/apt-mirror.ts';

const work = mkdtempSync(join(tmpdir(), 'nuksm-apt-mirror-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** An apt root with the given files under etc/apt (relative paths). */
function aptRoot(name: string, files: Record<string, string>): string {
  const root = join(work, name);
  mkdirSync(join(root, 'etc/apt/sources.list.d'), { recursive: true });
  for (const [rel, text] of Object.entries(files)) writeFileSync(join(root, 'etc/apt', rel), text);
  return root;
}

// Host names below are sample data of the parser tests (never used to fetch anything).
const DEB822 = `# the machine's own file
Types: deb
# a comment inside the stanza
URIs: http://mirror.example.org/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 abc
 -----END PGP PUBLIC KEY BLOCK-----

Types: deb
URIs: http://disabled.example.org/debian
Suites: bookworm
Components: main
Enabled: no
`;

describe('apt sources parsing', () => {
  it('reads one-line entries with options, comments and several components', () => {
    const s = parseOneLineSources(
      '# comment\n\ndeb [arch=amd64 signed-by=/k.gpg] http://a.example/debian/ bookworm main non-free # trailing\ndeb-src http://b.example/debian bookworm main\ndeb cdrom:[Debian]/ bookworm main\n',
      '/etc/apt/sources.list',
    );
    expect(s).toHaveLength(3);
    expect(s[0]).toMatchObject({ types: ['deb'], uris: ['http://a.example/debian/'], suites: ['bookworm'], components: ['main', 'non-free'], options: { arch: 'amd64', 'signed-by': '/k.gpg' }, line: 3 });
    expect(s[1]!.types).toEqual(['deb-src']);
  });

  it('reads deb822 stanzas, multi-line fields, and skips Enabled: no', () => {
    const s = parseDeb822Sources(DEB822, 'debian.sources');
    expect(s.map((x) => x.uris[0])).toEqual(['http://mirror.example.org/debian', 'http://security.example.org/debian-security']);
    expect(s[0]).toMatchObject({ suites: ['bookworm', 'bookworm-updates'], components: ['main', 'contrib'], line: 2 });
    expect(s[1]!.options['signed-by']).toContain('END PGP PUBLIC KEY BLOCK');
  });

  it('picks the first deb source serving the suite and component over a usable scheme', () => {
    const s = [
      ...parseOneLineSources('deb-src http://src.example/debian bookworm main\ndeb cdrom:[x]/ bookworm main\ndeb http://contrib.example/debian bookworm contrib\n', 'a.list'),
      ...parseDeb822Sources(DEB822, 'b.sources'),
    ];
    expect(pickSource(s, 'bookworm')?.uri).toBe('http://mirror.example.org/debian');
    expect(pickSource(s, 'bookworm-backports')).toBeNull();
    expect(pickSource(s, 'bookworm', 'contrib')?.uri).toBe('http://contrib.example/debian');
  });
});

describe('resolveDebianMirror', () => {
  it('takes the deb822 file of sources.list.d and derives backports from the same URI', async () => {
    const root = aptRoot('deb822', { 'sources.list.d/debian.sources': DEB822, 'sources.list.d/other.list.disabled': 'deb http://ignored.example/debian bookworm main\n' });
    const m = await resolveDebianMirror({ aptRoot: root });
    expect(m).toEqual({ uri: 'http://mirror.example.org/debian', backportsUri: 'http://mirror.example.org/debian', from: `${join(root, 'etc/apt/sources.list.d/debian.sources')}:2`, backportsListed: false });
    const { filesRead } = await readAptSources(root);
    expect(filesRead).toEqual([join(root, 'etc/apt/sources.list.d/debian.sources')]);
  });

  it('prefers sources.list, and a listed bookworm-backports source', async () => {
    const root = aptRoot('oneline', {
      'sources.list': 'deb http://one.example/debian/ bookworm main\n',
      'sources.list.d/backports.list': 'deb http://bpo.example/debian bookworm-backports main\n',
      'sources.list.d/debian.sources': DEB822,
    });
    const m = await resolveDebianMirror({ aptRoot: root });
    expect(m.uri).toBe('http://one.example/debian');
    expect(m.backportsUri).toBe('http://bpo.example/debian');
    expect(m.backportsListed).toBe(true);
    expect(m.from).toBe(`${join(root, 'etc/apt/sources.list')}:1`);
  });

  it('an explicit mirror wins and must be a URI', async () => {
    expect(await resolveDebianMirror({ mirror: 'http://given.example/debian/', aptRoot: join(work, 'nowhere') })).toEqual({ uri: 'http://given.example/debian', backportsUri: 'http://given.example/debian', from: 'option', backportsListed: false });
    await expect(resolveDebianMirror({ mirror: 'given.example/debian' })).rejects.toThrow(/not an http/);
  });

  it('fails with the files it read when no source serves bookworm main', async () => {
    const root = aptRoot('none', { 'sources.list': 'deb http://a.example/debian trixie main\n', 'sources.list.d/sec.sources': 'Types: deb\nURIs: http://s.example/\nSuites: bookworm-security\nComponents: main\n' });
    const err = await resolveDebianMirror({ aptRoot: root }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect((err as Error).message).toContain(`read: ${join(root, 'etc/apt/sources.list')}, ${join(root, 'etc/apt/sources.list.d/sec.sources')}`);
    expect((err as Error).message).toMatch(/'bookworm main'.*--mirror URL/);
    const empty = await resolveDebianMirror({ aptRoot: join(work, 'empty') }).then(() => null, (e: unknown) => e);
    expect((empty as Error).message).toMatch(/read: nothing/);
  });
});
