/**
 * Turns YAML parse errors and zod issues into ConfigError (file + key path + why), so every
 * bad spec or testbed file is reported the same way before anything runs.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z, type ZodError, type ZodType, type ZodTypeDef } from 'zod';
import { ConfigError } from '../core/errors.ts';
import { MAX_TIMER_MS } from '../core/long-timer.ts';

export function keyPathOf(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

export function configErrorFromZod(file: string, err: ZodError): ConfigError {
  let issue = err.issues[0]!;
  // A union (e.g. mergeWait: fixedS | converged): report the branch the value was meant for, the one
  // whose problem lies deeper than the union itself and is not "this key belongs to the other branch".
  while (issue.code === 'invalid_union') {
    const depth = issue.path.length;
    const branch = issue.unionErrors.map((e) => e.issues[0]!).find((i) => i.path.length > depth && i.code !== 'unrecognized_keys');
    if (!branch) break;
    issue = branch;
  }
  if (issue.code === 'unrecognized_keys') {
    const base = keyPathOf(issue.path);
    const key = issue.keys[0]!;
    return new ConfigError(file, base ? `${base}.${key}` : key, `unknown key '${key}'`);
  }
  return new ConfigError(file, keyPathOf(issue.path), issue.message);
}

/** Reads a YAML file; a missing file or a YAML syntax error is a ConfigError too. */
export function readYaml(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '', `cannot read file: ${(err as Error).message}`);
  }
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new ConfigError(file, '', `YAML syntax error: ${e.message.split('\n')[0]}`);
  }
  return doc.toJS();
}

export function parseWith<T>(file: string, schema: ZodType<T, ZodTypeDef, unknown>, data: unknown): T {
  const result = schema.safeParse(data);
  if (!result.success) throw configErrorFromZod(file, result.error);
  return result.data;
}

/** The same in whole seconds (≈ 24.8 days): the bound of every duration in specs and testbed files. */
export const MAX_DURATION_S = Math.floor(MAX_TIMER_MS / 1000);

/**
 * A duration in seconds that a Node timer can take: finite (YAML `.inf` and `.nan` are refused),
 * at most MAX_DURATION_S. `min` 'positive' (> 0) or 0 (≥ 0).
 */
export function durationS(min: 'positive' | 0 = 'positive') {
  const base = z.number({ invalid_type_error: 'expected a number of seconds' }).refine((v) => Number.isFinite(v), { message: 'must be a finite number of seconds (not .inf or .nan)' });
  return base
    .refine((v) => !Number.isFinite(v) || (min === 'positive' ? v > 0 : v >= 0), { message: min === 'positive' ? 'must be more than 0 s' : 'must be 0 s or more' })
    .refine((v) => !Number.isFinite(v) || v <= MAX_DURATION_S, { message: `must be at most ${MAX_DURATION_S} s (≈ 24.8 days: 2^31−1 ms, the longest Node timer)` });
}
