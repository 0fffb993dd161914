/**
 * Files a resume depends on are written atomically and durably, and only when their content
 * changes: plan.json, progress.json, the boot-resume guard, its data files, the unit and the cron file.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { campaignResumeHook } from '../../src/campaign/boot-resume.ts';
import { createCampaign, executeCampaign, openCampaign } from '../../src/campaign/campaign.ts';
import { writeFileDurable } from '../../src/core/durable-file.ts';
import { bootResumePaths, installBootResume } from '../../src/host/boot-resume/index.ts';
import type { ExecOptions, ExecResult, Executor } from '../../src/host/exec/types.ts';
import { DoubleTestbed } from './support/double-testbed.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'nuksm-durable-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('writeFileDurable', () => {
  it('writes through a temp file and rename, leaves no temp file, and does not rewrite unchanged content', () => {
    const dir = mkdtempSync(join(tmp, 'w-'));
    const file = join(dir, 'guard.sh');
    expect(writeFileDurable(file, 'one\n')).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe('one\n');
    const before = statSync(file);
    expect(writeFileDurable(file, 'one\n')).toBe(false);
    const same = statSync(file);
    expect([same.ino, same.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    expect(writeFileDurable(file, 'two\n')).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe('two\n');
    expect(statSync(file).ino).not.toBe(before.ino); // a rename, not an in-place rewrite
    expect(writeFileDurable(file, 'two\n', { always: true })).toBe(true);
    expect(readdirSync(dir)).toEqual(['guard.sh']);
    expect(() => writeFileDurable(join(dir, 'missing', 'x'), 'x')).toThrow(/ENOENT/);
    expect(readdirSync(dir)).toEqual(['guard.sh']);
  });
});

/** An Executor over an in-memory file system that records what it is asked to do. */
class MemoryHost implements Executor {
  readonly target = 'memory';
  readonly files = new Map<string, string>();
  readonly writes: string[] = [];
  readonly commands: string[] = [];
  async run(argv: readonly string[], _opts: ExecOptions = {}): Promise<ExecResult> {
    this.commands.push(argv[0] === 'sh' ? `durable-rename ${argv[5]}` : argv.join(' '));
    if (argv[0] === 'sh') {
      // The durable rename: sync tmp, mv tmp target, sync dir.
      const [tmpFile, target] = [argv[4]!, argv[5]!];
      this.files.set(target, this.files.get(tmpFile)!);
      this.files.delete(tmpFile);
    }
    return { exitCode: 0, stdout: '', stderr: '', durationMs: 0 };
  }
  async readFile(path: string): Promise<string> {
    const v = this.files.get(path);
    if (v === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return v;
  }
  async writeFile(path: string, content: string): Promise<void> {
    this.writes.push(path);
    this.files.set(path, content);
  }
  async close(): Promise<void> {}
}

describe('boot-resume hooks and plan files', () => {
  const c = createCampaign({ spec: join(ROOT, 'experiments', 'smoke.yaml'), testbedFile: join(ROOT, 'experiments', 'testbeds', 'model.yaml'), resultsDir: tmp, campaignId: 'durable-1' });

  it('a re-install (every resume) rewrites nothing and reloads nothing when the hooks are unchanged; a changed file is replaced by a durable rename', async () => {
    const host = new MemoryHost();
    const hook = { ...campaignResumeHook(c.plan, c.dir, 'systemd')!, via: 'both' as const, stateRoot: '/var/lib/nuksm-test/resume' };
    const p = bootResumePaths(hook);
    await installBootResume(host, hook);
    const files = [p.guard, p.unitFile, p.cronFile, `${p.stateDir}/command`, `${p.stateDir}/env`, `${p.stateDir}/cwd`, `${p.stateDir}/progress-command`];
    for (const f of files) expect(host.files.has(f), f).toBe(true);
    // Every file went through a temp file and the fsync + rename script, never written in place.
    expect(host.writes.every((w) => w.endsWith('.tmp-nuksm'))).toBe(true);
    expect(host.commands.filter((x) => x.startsWith('durable-rename')).sort()).toEqual(files.map((f) => `durable-rename ${f}`).sort());
    expect(host.commands).toContain('systemctl daemon-reload');
    expect([...host.files.keys()].some((k) => k.endsWith('.tmp-nuksm'))).toBe(false);

    host.writes.length = 0;
    host.commands.length = 0;
    await installBootResume(host, hook);
    expect(host.writes).toEqual([]);
    expect(host.commands).not.toContain('systemctl daemon-reload');

    await installBootResume(host, { ...hook, retryDelayS: 30 });
    expect(host.writes).toEqual([`${p.guard}.tmp-nuksm`]);
    expect(host.files.get(p.guard)).toContain('sleep 30');
  });

  it('plan.json is written once at creation; runs and resumes take the plan (and its spec hash) from the journal', async () => {
    const planFile = join(c.dir, 'plan.json');
    const written = JSON.parse(readFileSync(planFile, 'utf8')) as { specHash: string };
    expect(written.specHash).toMatch(/^[0-9a-f]{64}$/);
    const mtime = statSync(planFile).mtimeMs;
    const r = await executeCampaign(c, new DoubleTestbed({}), { log: pino({ level: 'silent' }), maxSteps: 1 });
    expect(r.outcome).toBe('stopped');
    expect(statSync(planFile).mtimeMs).toBe(mtime);
    c.store.close();
    // Gone (or emptied by a power loss in an older version): the resume does not need it.
    unlinkSync(planFile);
    writeFileSync(join(c.dir, 'plan.json.note'), 'removed by the test\n');
    const again = openCampaign(tmp, 'durable-1');
    expect((await executeCampaign(again, new DoubleTestbed({}), { log: pino({ level: 'silent' }) })).outcome).toBe('complete');
    for (const st of again.journal.steps()) expect(again.store.manifest(st.stepId)).toMatchObject({ specHash: written.specHash });
    again.store.close();
  });
});
