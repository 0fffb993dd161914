import { createHmac, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KnownHosts, hostFieldMatches, keyTypeOfBlob, knownHostsName, parseKnownHosts } from '../../src/host/exec/known-hosts.ts';

const work = mkdtempSync(join(tmpdir(), 'nuksm-kh-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** An ssh-ed25519 public key blob: string "ssh-ed25519" + string key (32 bytes). */
function ed25519Blob(): Buffer {
  const raw = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
}

describe('known_hosts', () => {
  const key = ed25519Blob();
  const b64 = key.toString('base64');

  it('names hosts the way OpenSSH looks them up', () => {
    expect(knownHostsName('h', 22)).toBe('h');
    expect(knownHostsName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
    expect(keyTypeOfBlob(key)).toBe('ssh-ed25519');
  });

  it('parses markers, comments and patterns', () => {
    const e = parseKnownHosts(`# c\n@revoked * ssh-ed25519 AAA\nh1,h2 ssh-rsa BBB comment\n\nbad\n`);
    expect(e).toEqual([
      { marker: '@revoked', hostField: '*', keyType: 'ssh-ed25519', keyBase64: 'AAA' },
      { marker: '', hostField: 'h1,h2', keyType: 'ssh-rsa', keyBase64: 'BBB' },
    ]);
    expect(hostFieldMatches('h1,h2', 'h2')).toBe(true);
    expect(hostFieldMatches('*.lab,!bad.lab', 'good.lab')).toBe(true);
    expect(hostFieldMatches('*.lab,!bad.lab', 'bad.lab')).toBe(false);
    expect(hostFieldMatches('[10.0.0.?]:2222', '[10.0.0.7]:2222')).toBe(true);
    expect(hostFieldMatches('h', 'h.x')).toBe(false);
  });

  it('matches hashed entries (HMAC-SHA1 of the name keyed by the salt)', () => {
    const salt = Buffer.from('0123456789abcdefghij');
    const field = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[h]:2222').digest('base64')}`;
    expect(hostFieldMatches(field, '[h]:2222')).toBe(true);
    expect(hostFieldMatches(field, 'h')).toBe(false);
  });

  it('verifies: known, unknown (strict refuses, file untouched), mismatch, revoked', async () => {
    const file = join(work, 'kh1');
    const other = ed25519Blob().toString('base64');
    writeFileSync(file, `[a]:2222 ssh-ed25519 ${b64}\nb ssh-ed25519 ${other}\n@revoked c ssh-ed25519 ${b64}\n`);
    const kh = new KnownHosts(file);
    expect(await kh.verify('a', 2222, key)).toEqual({ ok: true, how: 'known' });
    expect(await kh.verify('a', 22, key)).toMatchObject({ ok: false, reason: 'unknown' });
    expect(await kh.verify('b', 22, key)).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(await kh.verify('c', 22, key)).toMatchObject({ ok: false, reason: 'revoked' });
    expect(await kh.keyTypesFor('a', 2222)).toEqual(['ssh-ed25519']);
  });

  it('pins on first use only in that mode, as a hashed entry that is enforced afterwards', async () => {
    const file = join(work, 'sub', 'kh2');
    expect(await new KnownHosts(file).verify('n', 22, key)).toMatchObject({ ok: false, reason: 'unknown' });
    const pin = new KnownHosts(file, 'pin-on-first-use');
    expect(await pin.verify('n', 22, key)).toEqual({ ok: true, how: 'pinned' });
    expect(readFileSync(file, 'utf8')).toMatch(/^\|1\|[^ ]+ ssh-ed25519 /);
    expect(await new KnownHosts(file).verify('n', 22, key)).toEqual({ ok: true, how: 'known' });
    expect(await pin.verify('n', 22, ed25519Blob())).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(1);
  });
  it('pinning appends on a line of its own when the file lacks a trailing newline (no glued entries)', async () => {
    const file = join(work, 'kh-no-newline');
    const other = ed25519Blob();
    writeFileSync(file, `first ssh-ed25519 ${other.toString('base64')}`); // no trailing newline
    const pin = new KnownHosts(file, 'pin-on-first-use');
    expect(await pin.verify('second', 22, key)).toEqual({ ok: true, how: 'pinned' });
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe(`first ssh-ed25519 ${other.toString('base64')}`);
    expect(lines[2]).toBe('');
    // Both entries are intact and enforced.
    const strict = new KnownHosts(file);
    expect(await strict.verify('first', 22, other)).toEqual({ ok: true, how: 'known' });
    expect(await strict.verify('second', 22, key)).toEqual({ ok: true, how: 'known' });
  });
});
