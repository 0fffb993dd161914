/** Known secrets and their redaction (src/core/secrets.ts): the one mechanism every sink uses. */
import { describe, expect, it } from 'vitest';
import { HarnessError } from '../../src/core/errors.ts';
import { REDACTED, redact, redactDeep, registerSecret } from '../../src/core/secrets.ts';
import { getWorkload } from '../../src/workloads/index.ts';

describe('secrets', () => {
  it('redacts a registered secret, its JSON-escaped and SQL-escaped forms, and leaves other text alone', () => {
    const s = `q'x\\y"z-${Date.now()}`;
    registerSecret(s);
    expect(redact(`--mysql-password=${s} rest`)).toBe(`--mysql-password=${REDACTED} rest`);
    expect(redact(JSON.stringify({ argv: [`-p${s}`] }))).toBe(`{"argv":["-p${REDACTED}"]}`);
    expect(redact(`IDENTIFIED BY '${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`)).toBe(`IDENTIFIED BY '${REDACTED}'`);
    expect(redact('nothing secret here')).toBe('nothing secret here');
    registerSecret('nuksm'); // an old plan's short password: not redacted, or every path would be
    expect(redact('/var/lib/nuksm/x')).toBe('/var/lib/nuksm/x');
    expect(redactDeep({ a: [`x${s}`], n: 3 })).toEqual({ a: [`x${REDACTED}`], n: 3 });
  });

  it('HarnessError messages and details never hold a registered secret', () => {
    registerSecret('err-secret-123');
    const e = new HarnessError('timeout', 'sysbench --mysql-password=err-secret-123 timed out', { argv: ['sysbench', '--mysql-password=err-secret-123'] });
    expect(e.message).not.toContain('err-secret-123');
    expect(JSON.stringify(e.details)).not.toContain('err-secret-123');
  });

  it("the mysql workload registers its password and keeps it out of every phase's argv and env", () => {
    const mysql = getWorkload('mysql');
    const password = `pw-${Date.now()}-x`;
    const params = mysql.resolveParams('small', { password });
    expect(redact(`a ${password} b`)).toBe(`a ${REDACTED} b`);
    const phases = mysql.phases(params, { installDir: '/i', workDir: '/w' });
    for (const p of phases) expect(JSON.stringify([p.argv, p.env ?? {}])).not.toContain(password);
    // It reaches sysbench and the server only through the secret files of the first phase.
    expect(phases[0]!.secretFiles!.map((f) => f.content).join('')).toContain(password);
    expect(phases.filter((p) => p.argv[0] === 'sysbench').every((p) => p.argv.includes('--config-file=/w/sysbench-secrets.cfg'))).toBe(true);
  });

  it('refuses mysql passwords that redaction or an option file cannot take', () => {
    const mysql = getWorkload('mysql');
    for (const password of ['short', 'two\nlines', ' padded-password ', 'tab\there-pw']) {
      expect(() => mysql.resolveParams('small', { password }), JSON.stringify(password)).toThrow(/params\.password/);
    }
  });
});
