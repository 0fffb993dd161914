/**
 * Which Debian mirror an image build uses: the one the building machine's apt already uses
 * (its sources.list, sources.list.d/*.list and deb822 sources.list.d/*.sources), or one given
 * explicitly. The project names no mirror host itself. The mirror is not part of any image cache
 * key: the packages (and their versions) are.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HarnessError } from '../../core/errors.ts';

export interface AptSource {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  /** Options such as signed-by, arch (lower-case keys). */
  options: Record<string, string>;
  /** File and line (one-line format) or stanza start line (deb822). */
  file: string;
  line: number;
}

export interface DebianMirror {
  /** URI serving `<suite> main` (no trailing slash). */
  uri: string;
  /** URI serving `<suite>-backports main`: a source that names it, else the same URI as `uri`. */
  backportsUri: string;
  /** Where it came from: 'option' or the file:line of the source entry. */
  from: string;
  /** Whether backportsUri was found in a source (true) or derived from `uri` (false). */
  backportsListed: boolean;
}

const USABLE_SCHEME = /^(https?|file|ftp):\/\//;

/** One-line format: `deb [opt=val ...] URI suite [component ...]`; comments and blank lines skipped. */
export function parseOneLineSources(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)((?:\s+\S+)*)$/.exec(line);
    if (!m) return;
    const options: Record<string, string> = {};
    for (const opt of (m[2] ?? '').trim().split(/\s+/).filter(Boolean)) {
      const eq = opt.indexOf('=');
      if (eq > 0) options[opt.slice(0, eq).toLowerCase()] = opt.slice(eq + 1);
    }
    out.push({ types: [m[1]!], uris: [m[3]!], suites: [m[4]!], components: (m[5] ?? '').trim().split(/\s+/).filter(Boolean), options, file, line: i + 1 });
  });
  return out;
}

/** deb822 format (`Types:`, `URIs:`, `Suites:`, `Components:`, `Enabled: no` skips a stanza). */
export function parseDeb822Sources(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  let fields: Record<string, string> = {};
  let start = 0;
  let last = '';
  const flush = () => {
    if (Object.keys(fields).length > 0) {
      const list = (k: string) => (fields[k] ?? '').split(/\s+/).filter(Boolean);
      const enabled = (fields.enabled ?? 'yes').trim().toLowerCase();
      if (enabled !== 'no' && enabled !== 'false') {
        const options: Record<string, string> = {};
        for (const [k, v] of Object.entries(fields)) if (!['types', 'uris', 'suites', 'components', 'enabled'].includes(k)) options[k] = v.trim();
        out.push({ types: list('types'), uris: list('uris'), suites: list('suites'), components: list('components'), options, file, line: start });
      }
    }
    fields = {};
    last = '';
  };
  text.split('\n').forEach((raw, i) => {
    if (raw.startsWith('#')) return;
    if (raw.trim() === '') {
      flush();
      return;
    }
    if (/^\s/.test(raw)) {
      // Continuation line (multi-line field such as an inline Signed-By key).
      if (last) fields[last] = `${fields[last]}\n${raw.trim()}`;
      return;
    }
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
    if (!m) return;
    if (Object.keys(fields).length === 0) start = i + 1;
    last = m[1]!.toLowerCase();
    fields[last] = m[2]!;
  });
  flush();
  return out;
}

/** The source files apt reads under an apt root ('/' = this machine), in apt's order. */
export async function readAptSources(aptRoot = '/'): Promise<{ sources: AptSource[]; filesRead: string[] }> {
  const etc = join(aptRoot, 'etc/apt');
  const filesRead: string[] = [];
  const sources: AptSource[] = [];
  const main = join(etc, 'sources.list');
  if (existsSync(main)) {
    filesRead.push(main);
    sources.push(...parseOneLineSources(await readFile(main, 'utf8'), main));
  }
  const partsDir = join(etc, 'sources.list.d');
  const parts = existsSync(partsDir) ? (await readdir(partsDir)).sort() : [];
  for (const name of parts) {
    const path = join(partsDir, name);
    // apt ignores every other extension (*.disabled, *.save, …).
    if (name.endsWith('.list')) {
      filesRead.push(path);
      sources.push(...parseOneLineSources(await readFile(path, 'utf8'), path));
    } else if (name.endsWith('.sources')) {
      filesRead.push(path);
      sources.push(...parseDeb822Sources(await readFile(path, 'utf8'), path));
    }
  }
  return { sources, filesRead };
}

const trimSlash = (u: string): string => u.replace(/\/+$/, '');

/** The first `deb` source serving `suite` with `component` over a scheme debootstrap and apt both take. */
export function pickSource(sources: readonly AptSource[], suite: string, component = 'main'): { uri: string; source: AptSource } | null {
  for (const s of sources) {
    if (!s.types.includes('deb') || !s.suites.includes(suite) || !s.components.includes(component)) continue;
    const uri = s.uris.find((u) => USABLE_SCHEME.test(u));
    if (uri) return { uri: trimSlash(uri), source: s };
  }
  return null;
}

export interface ResolveMirrorOptions {
  /** Explicit mirror URI (CLI --mirror): used as is for the suite and its backports. */
  mirror?: string;
  suite?: string;
  /** Root whose etc/apt is read (tests); default '/'. */
  aptRoot?: string;
}

/** The Debian mirror for `suite` (default bookworm) main and its backports; a clear error when there is none. */
export async function resolveDebianMirror(opts: ResolveMirrorOptions = {}): Promise<DebianMirror> {
  const suite = opts.suite ?? 'bookworm';
  if (opts.mirror) {
    if (!USABLE_SCHEME.test(opts.mirror)) throw new HarnessError('config', `mirror '${opts.mirror}' is not an http(s)://, ftp:// or file:// URI`);
    const uri = trimSlash(opts.mirror);
    return { uri, backportsUri: uri, from: 'option', backportsListed: false };
  }
  const { sources, filesRead } = await readAptSources(opts.aptRoot ?? '/');
  const found = pickSource(sources, suite);
  if (!found) {
    throw new HarnessError(
      'config',
      `no apt source on this machine serves Debian '${suite} main' (read: ${filesRead.length > 0 ? filesRead.join(', ') : `nothing: no ${join(opts.aptRoot ?? '/', 'etc/apt/sources.list')} or sources.list.d/*.list|*.sources`}); pass the mirror explicitly (--mirror URL)`,
      { filesRead, suite },
    );
  }
  const backports = pickSource(sources, `${suite}-backports`);
  return {
    uri: found.uri,
    backportsUri: backports?.uri ?? found.uri,
    from: `${found.source.file}:${found.source.line}`,
    backportsListed: backports !== null,
  };
}
