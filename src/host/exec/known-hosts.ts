/**
 * OpenSSH known_hosts checking for ssh2: plain and hashed (`|1|salt|hmac`) host entries,
 * comma-separated patterns with `*`/`?` wildcards and `!` negation, `[host]:port` for non-22
 * ports, `@revoked` markers. There is no accept-anything mode: an unknown host is refused unless
 * first-use pinning was turned on explicitly, which appends the key and enforces it from then on.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface KnownHostEntry {
  marker: '' | '@revoked' | '@cert-authority';
  hostField: string;
  keyType: string;
  keyBase64: string;
}

export type HostKeyPolicy = 'strict' | 'pin-on-first-use';

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    let marker: KnownHostEntry['marker'] = '';
    if (parts[0] === '@revoked' || parts[0] === '@cert-authority') marker = parts.shift() as KnownHostEntry['marker'];
    const [hostField, keyType, keyBase64] = parts;
    if (!hostField || !keyType || !keyBase64) continue;
    entries.push({ marker, hostField, keyType, keyBase64 });
  }
  return entries;
}

function wildcardToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/** Does a known_hosts host field (hashed, or a pattern list) match this lookup name? */
export function hostFieldMatches(hostField: string, name: string): boolean {
  if (hostField.startsWith('|1|')) {
    const [, , salt, hash] = hostField.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  let matched = false;
  for (const pattern of hostField.split(',')) {
    if (pattern.startsWith('!')) {
      if (wildcardToRegExp(pattern.slice(1)).test(name)) return false;
    } else if (wildcardToRegExp(pattern).test(name)) {
      matched = true;
    }
  }
  return matched;
}

/** The key type named inside an SSH public key blob (string length + name). */
export function keyTypeOfBlob(blob: Buffer): string {
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

export type HostKeyVerdict =
  | { ok: true; how: 'known' | 'pinned' }
  | { ok: false; reason: 'unknown' | 'mismatch' | 'revoked'; message: string };

export class KnownHosts {
  constructor(
    readonly file: string,
    readonly policy: HostKeyPolicy = 'strict',
  ) {}

  async entries(): Promise<KnownHostEntry[]> {
    try {
      return parseKnownHosts(await readFile(this.file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /** Key types recorded for this host, so the client offers only algorithms it can verify. */
  async keyTypesFor(host: string, port: number): Promise<string[]> {
    const name = knownHostsName(host, port);
    const types = (await this.entries()).filter((e) => e.marker === '' && hostFieldMatches(e.hostField, name)).map((e) => e.keyType);
    return [...new Set(types)];
  }

  /** Check a presented host key blob; with pinning on, record an unknown host's key. */
  async verify(host: string, port: number, keyBlob: Buffer): Promise<HostKeyVerdict> {
    const name = knownHostsName(host, port);
    const presented = keyBlob.toString('base64');
    const type = keyTypeOfBlob(keyBlob);
    const entries = (await this.entries()).filter((e) => e.marker !== '@cert-authority' && hostFieldMatches(e.hostField, name));
    if (entries.some((e) => e.marker === '@revoked' && e.keyBase64 === presented)) {
      return { ok: false, reason: 'revoked', message: `host key for ${name} (${type}) is marked @revoked in ${this.file}` };
    }
    const plain = entries.filter((e) => e.marker === '');
    if (plain.some((e) => e.keyBase64 === presented)) return { ok: true, how: 'known' };
    if (plain.length > 0) {
      return {
        ok: false,
        reason: 'mismatch',
        message: `host key for ${name} (${type}) does NOT match the key recorded in ${this.file}: possible man-in-the-middle, or the host was reinstalled; remove the old entry if that is expected`,
      };
    }
    if (this.policy === 'pin-on-first-use') {
      await this.pin(name, type, presented);
      return { ok: true, how: 'pinned' };
    }
    return {
      ok: false,
      reason: 'unknown',
      message: `host ${name} is not in ${this.file} (${type} key offered); add it (ssh-keyscan -p ${port} ${host} >> ${this.file}) or enable first-use pinning explicitly`,
    };
  }

  /** Append a hashed entry, as `ssh-keygen -H` writes them. */
  private async pin(name: string, keyType: string, keyBase64: string): Promise<void> {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update(name).digest('base64');
    await mkdir(dirname(this.file), { recursive: true });
    // A file whose last line has no newline (hand-edited, `echo -n`) would glue the new entry onto it.
    const existing = await readFile(this.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    const sep = existing === '' || existing.endsWith('\n') ? '' : '\n';
    await appendFile(this.file, `${sep}|1|${salt.toString('base64')}|${hash} ${keyType} ${keyBase64}\n`, { mode: 0o600 });
  }
}
