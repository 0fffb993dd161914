/**
 * The runner lock under real concurrency: several processes that all find a stale lock (its
 * holder died) try to take it at the same instant, round after round; exactly one may win each
 * round. And a holder killed with SIGKILL leaves nothing that blocks the next runner.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockCampaign } from '../../src/campaign/campaign.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'nuksm-lock-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// A contender: says 'ready', waits for the start time on stdin, then per round tries the round's
// lock at the same instant as the others and holds it until 150 ms past that instant if it got it,
// printing per round [took, released] (ms) or null.
const CHILD = `
import { lockCampaign } from ${JSON.stringify(join(ROOT, 'src', 'campaign', 'campaign.ts'))};
const [root, roundsText, mode] = process.argv.slice(2);
process.stdout.write('ready\\n');
let input = '';
process.stdin.on('data', (d) => {
  input += d;
  if (!input.includes('\\n')) return;
  const t0 = Number(input.trim());
  if (mode === 'hold') {
    lockCampaign(root);
    process.stdout.write('holding\\n');
    setInterval(() => {}, 1000);
    return;
  }
  const out = [];
  for (let r = 0; r < Number(roundsText); r++) {
    const at = t0 + r * 250;
    while (Date.now() < at) {}
    try {
      const unlock = lockCampaign(root + '/r' + r);
      const from = Date.now();
      while (Date.now() < at + 150) {}
      out.push([from, Date.now()]);
      unlock();
    } catch {
      out.push(null);
    }
  }
  process.stdout.write(JSON.stringify(out) + '\\n');
  process.exit(0);
});
`;
const childFile = join(tmp, 'contender.mts');
writeFileSync(childFile, CHILD);

function contender(root: string, rounds: number, mode: 'race' | 'hold' = 'race') {
  const child = spawn(process.execPath, ['--import', 'tsx', childFile, root, String(rounds), mode], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const lines: string[] = [];
  const waiters: [string, () => void][] = [];
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const parts = out.split('\n');
    out = parts.pop()!;
    lines.push(...parts);
    for (const [want, resolve] of waiters) if (lines.some((l) => l.startsWith(want))) resolve();
  });
  const waitFor = (want: string) => new Promise<string>((resolve) => {
    const done = () => resolve(lines.find((l) => l.startsWith(want))!);
    if (lines.some((l) => l.startsWith(want))) done();
    else waiters.push([want, done]);
  });
  return { child, waitFor };
}

describe('runner lock', () => {
  it('of several resumers that find the same stale lock at the same instant, never two run at once (10 rounds)', async () => {
    const rounds = 10;
    const root = join(tmp, 'race');
    for (let r = 0; r < rounds; r++) {
      mkdirSync(join(root, `r${r}`), { recursive: true });
      // Left by a runner of an earlier boot: stale, whatever pid 1 is now.
      writeFileSync(join(root, `r${r}`, 'runner.lock'), '1 00000000-0000-0000-0000-000000000000');
    }
    const procs = Array.from({ length: 5 }, () => contender(root, rounds));
    await Promise.all(procs.map((p) => p.waitFor('ready')));
    const t0 = Date.now() + 500;
    for (const p of procs) p.child.stdin.write(`${t0}\n`);
    const results = (await Promise.all(procs.map((p) => p.waitFor('[')))).map((l) => JSON.parse(l) as ([number, number] | null)[]);
    for (let r = 0; r < rounds; r++) {
      // Who held round r's lock, and when: someone did, and never two at once (a contender the
      // loaded machine delayed may take it after the first let go).
      const held = results.map((res) => res[r]).filter((h): h is [number, number] => h !== null).sort((a, b) => a[0] - b[0]);
      expect(held.length, `round ${r}`).toBeGreaterThanOrEqual(1);
      for (let i = 1; i < held.length; i++) expect(held[i]![0], `round ${r}: two runners at once`).toBeGreaterThanOrEqual(held[i - 1]![1]);
    }
  });

  it('a holder killed with SIGKILL does not block the next runner; a live holder does', async () => {
    const dir = join(tmp, 'killed');
    mkdirSync(dir, { recursive: true });
    const holder = contender(dir, 0, 'hold');
    await holder.waitFor('ready');
    holder.child.stdin.write(`${Date.now()}\n`);
    await holder.waitFor('holding');
    expect(() => lockCampaign(dir)).toThrow(new RegExp(`already being run by pid ${holder.child.pid}`));
    const exited = new Promise((r) => holder.child.on('exit', r));
    holder.child.kill('SIGKILL');
    await exited;
    const unlock = lockCampaign(dir);
    // Held now by this process: a second take (another connection) is refused too.
    expect(() => lockCampaign(dir)).toThrow(/already being run by pid/);
    unlock();
    lockCampaign(dir)();
  });
});
