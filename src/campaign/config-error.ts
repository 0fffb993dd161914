/**
 * Turns YAML parse errors and zod issues into ConfigError (file + key path + why), so every
 * bad spec or testbed file is reported the same way before anything runs.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { ZodError, ZodType, ZodTypeDef } from 'zod';
import { ConfigError } from '../core/errors.ts';

export function keyPathOf(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

export function configErrorFromZod(file: string, err: ZodError): ConfigError {
  const issue = err.issues[0]!;
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
