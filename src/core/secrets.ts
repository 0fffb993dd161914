/**
 * Known secrets (a MySQL password, …) and their redaction: the one place that keeps them out of
 * logs and stored failures. A workload registers each secret it uses (registerSecret) before any
 * command that could print it runs; every sink — the campaign log (pino hook), failure messages
 * in the journal, HarnessError messages — passes its text through redact(). Secrets themselves
 * never travel in argv: workloads hand them over in files written with mode 0600 (Phase.secretFiles).
 */

/** What a secret is replaced with. */
export const REDACTED = '***';

const secrets = new Set<string>();

/** Shorter values are not redacted: they cannot be told apart from ordinary text (an old plan's password 'nuksm' is in every path). */
export const MIN_SECRET_LENGTH = 8;

/** Remember `value` as a secret (ignored below MIN_SECRET_LENGTH; new specs refuse such passwords). */
export function registerSecret(value: string): void {
  if (value.length >= MIN_SECRET_LENGTH) secrets.add(value);
}

/** `text` with every known secret (and its JSON-escaped and SQL-escaped forms) replaced by REDACTED. */
export function redact(text: string): string {
  if (secrets.size === 0 || text.length === 0) return text;
  let out = text;
  // Longest first, so a secret containing another is replaced whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    for (const form of new Set([s, JSON.stringify(s).slice(1, -1), s.replace(/\\/g, '\\\\').replace(/'/g, "''")])) {
      if (out.includes(form)) out = out.split(form).join(REDACTED);
    }
  }
  return out;
}

/** A copy of a JSON-like value with every string redacted (details of errors, log objects). */
export function redactDeep<T>(value: T): T {
  if (secrets.size === 0) return value;
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v)])) as T;
  }
  return value;
}
