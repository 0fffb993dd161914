/**
 * The boot-resume guard script, executed for real with sh: boots are simulated by changing the
 * boot-id file, progress by growing the progress file. Hooks themselves (systemd, cron) are
 * exercised inside the emulated machine by the system tests.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, appendFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { campaignResumeHook } from '../../src/campaign/boot-resume.ts';
import { createCampaign } from '../../src/campaign/campaign.ts';

const ROOT = join(import.meta.dirname, '..', '..');
import { bootResumePaths, cronEntry, guardDataFiles, guardScript, systemdUnit, type BootResumeSpec } from '../../src/host/boot-resume/index.ts';

/** What installBootResume writes, minus the hooks: the guard and its data files. */
function writeGuard(spec: BootResumeSpec): void {
  for (const f of guardDataFiles(spec)) writeFileSync(f.path, f.content);
  writeFileSync(bootResumePaths(spec).guard, guardScript(spec));
}

function setup(max = 3) {
  const root = mkdtempSync(join(tmpdir(), 'nuksm-boot-resume-'));
  const spec: BootResumeSpec = {
    id: `t${process.pid}-${Math.floor(Math.random() * 1e6)}`,
    command: ['sh', '-c', 'echo resumed >> "$1"', 'sh', join(root, 'runs')],
    // Stands in for `nuksm status <id> --finished`: the number of finished steps (lines here).
    progressCommand: ['sh', '-c', 'wc -l < "$1"', 'sh', join(root, 'journal')],
    maxBootsWithoutProgress: max,
    via: 'both',
    stateRoot: join(root, 'state'),
    bootIdFile: join(root, 'boot_id'),
  };
  const p = bootResumePaths(spec);
  execFileSync('mkdir', ['-p', p.stateDir]);
  writeGuard(spec);
  const journal = join(root, 'journal');
  writeFileSync(journal, 'step1\n');
  let boots = 0;
  const boot = (): number => {
    boots++;
    writeFileSync(spec.bootIdFile!, `00000000-0000-0000-0000-${String(boots).padStart(12, '0')}\n`);
    return guard();
  };
  const guard = (): number => {
    try {
      execFileSync('sh', [p.guard], { stdio: 'ignore' });
      return 0;
    } catch (e) {
      return (e as { status: number }).status;
    }
  };
  const runs = () => (existsSync(join(root, 'runs')) ? readFileSync(join(root, 'runs'), 'utf8').trim().split('\n').length : 0);
  const progress = (n: number) => appendFileSync(journal, `step${n}\n`);
  /** What every boot does to progress.json: a rewrite (new size, new mtime), no step finished. */
  const rewrite = (n: number) => {
    writeFileSync(join(root, 'progress.json'), `{"outcome":"running","n":${'x'.repeat(n)}}\n`);
    utimesSync(join(root, 'progress.json'), new Date(), new Date(Date.now() + n * 1000));
  };
  return { spec, p, boot, guard, runs, progress, rewrite };
}

describe('boot-resume guard', () => {
  it('resumes once per boot, whichever hook runs first', () => {
    const t = setup();
    expect(t.boot()).toBe(0);
    expect(t.guard()).toBe(0); // the second hook (cron after systemd) in the same boot
    expect(t.runs()).toBe(1);
    t.progress(2);
    expect(t.boot()).toBe(0);
    expect(t.runs()).toBe(2);
  });

  it('stops after N boots without progress, writes a report and does not run again', () => {
    const t = setup(2);
    expect(t.boot()).toBe(0); // first boot: baseline
    expect(t.boot()).toBe(0); // 1 boot without progress
    expect(t.boot()).toBe(1); // 2 → boot loop
    expect(readFileSync(t.p.reportFile, 'utf8')).toMatch(/boot loop: 2 boots in a row without progress/);
    expect(t.runs()).toBe(2);
  });

  it('progress is the finished-step count, not progress.json being rewritten: a boot loop that rewrites it still stops', () => {
    const t = setup(2);
    for (let i = 1; i <= 3; i++) {
      t.rewrite(i); // every boot's runner rewrites progress.json, but no step finishes
      expect(t.boot()).toBe(i < 3 ? 0 : 1);
    }
    expect(readFileSync(t.p.reportFile, 'utf8')).toMatch(/boot loop: 2 boots in a row without progress \(progress: 1,/);
  });

  it('a progress command that fails counts as no progress', () => {
    const t = setup(1);
    writeFileSync(join(t.p.stateDir, 'progress-command'), 'false\n');
    expect(t.boot()).toBe(0);
    expect(t.boot()).toBe(1);
    expect(readFileSync(t.p.reportFile, 'utf8')).toMatch(/progress: none/);
  });

  it('progress resets the boot-loop count', () => {
    const t = setup(2);
    for (let i = 0; i < 6; i++) {
      t.progress(i + 2);
      expect(t.boot()).toBe(0);
    }
    expect(t.runs()).toBe(6);
    expect(existsSync(t.p.reportFile)).toBe(false);
  });

  it('pause file: nothing runs while it exists; stop file: nothing runs and the hooks are removed', () => {
    const t = setup();
    writeFileSync(t.p.pauseFile, '');
    expect(t.boot()).toBe(0);
    expect(t.runs()).toBe(0);
    execFileSync('rm', [t.p.pauseFile]);
    expect(t.boot()).toBe(0);
    expect(t.runs()).toBe(1);
    writeFileSync(t.p.stopFile, '');
    t.progress(3);
    expect(t.boot()).toBe(0);
    expect(t.runs()).toBe(1);
    expect(readFileSync(t.p.bootLog, 'utf8')).toMatch(/stop file present: removing hooks/);
  });

  it('reruns a crashed resume command in the same boot, but not one that exited with a final code', () => {
    const root = mkdtempSync(join(tmpdir(), 'nuksm-boot-resume-retry-'));
    const counter = join(root, 'runs');
    // Crashes (exit 139, a SIGSEGV) on its first run, succeeds on the second.
    const flaky: BootResumeSpec = {
      id: `r${process.pid}`,
      command: ['sh', '-c', 'n=$(($(cat "$1" 2>/dev/null || echo 0) + 1)); echo $n > "$1"; [ $n -ge 2 ] && exit 0; exit 139', 'sh', counter],
      progressCommand: ['sh', '-c', 'wc -c < "$1"', 'sh', join(root, 'progress')],
      via: 'cron',
      stateRoot: join(root, 'state'),
      bootIdFile: join(root, 'boot_id'),
      finalExitCodes: [0, 3],
      attemptsPerBoot: 3,
      retryDelayS: 0,
    };
    const p = bootResumePaths(flaky);
    execFileSync('mkdir', ['-p', p.stateDir]);
    writeGuard(flaky);
    writeFileSync(flaky.bootIdFile!, 'boot-1\n');
    execFileSync('sh', [p.guard, 'cron']);
    expect(readFileSync(counter, 'utf8').trim()).toBe('2');
    expect(readFileSync(p.bootLog, 'utf8')).toMatch(/exited 139[\s\S]*retrying the resume command \(2\/3\)[\s\S]*exited 0/);
    // Exit 3 (rebooting) is final: one run in the next boot.
    writeFileSync(counter, '-5\n');
    const rebooting = { ...flaky, command: ['sh', '-c', 'n=$(($(cat "$1") + 1)); echo $n > "$1"; exit 3', 'sh', counter] };
    writeGuard(rebooting);
    writeFileSync(flaky.bootIdFile!, 'boot-2\n');
    appendFileSync(join(root, 'progress'), 'x');
    expect(() => execFileSync('sh', [p.guard, 'cron'])).toThrow();
    expect(readFileSync(counter, 'utf8').trim()).toBe('-4');
  });

  it('takes paths with quotes, $(…) and spaces as data: the guard is sh -n clean, runs the command with them verbatim and executes nothing injected', () => {
    const root = mkdtempSync(join(tmpdir(), 'nuksm-boot-resume-inject-'));
    const pwned = join(root, 'PWNED');
    // A results directory a user could really have, with a command substitution and a quote in it.
    const weird = join(root, `res "dir" $(touch ${pwned}) \`touch ${pwned}\` it's`);
    mkdirSync(weird, { recursive: true });
    const c = createCampaign({ spec: join(ROOT, 'experiments', 'smoke.yaml'), testbedFile: join(ROOT, 'experiments', 'testbeds', 'model.yaml'), resultsDir: weird, campaignId: 'inj-1' });
    c.store.close();
    const hook = campaignResumeHook(c.plan, c.dir, 'systemd')!;
    const argsFile = join(root, 'args');
    // The real hook's argv, run through a stand-in that records its arguments one per line (no node start here).
    const spec: BootResumeSpec = {
      ...hook,
      command: ['sh', '-c', 'for a in "$@"; do printf "%s\\n" "$a"; done > "$0"', argsFile, ...hook.command.slice(2)],
      env: { ...hook.env, NUKSM_X: `a "b" $(touch ${pwned})` },
      stateRoot: join(root, 'state'),
      bootIdFile: join(root, 'boot_id'),
      maxBootsWithoutProgress: 1,
    };
    const p = bootResumePaths(spec);
    mkdirSync(p.stateDir, { recursive: true });
    writeGuard(spec);
    writeFileSync(spec.bootIdFile!, 'boot-1\n');
    execFileSync('sh', ['-n', p.guard]);
    expect(guardScript(spec)).not.toContain(weird);
    execFileSync('sh', [p.guard, 'systemd']);
    expect(readFileSync(argsFile, 'utf8').split('\n').slice(0, -1)).toEqual(['resume', 'inj-1', '--results-dir', weird]);
    expect(existsSync(pwned)).toBe(false);
    expect(readFileSync(p.bootLog, 'utf8')).toMatch(/resume command exited 0/);
    // The next boot without progress writes the boot-loop report. Progress came from the real
    // `nuksm status <id> --results-dir <weird> --finished` (0 steps finished in this campaign).
    writeFileSync(spec.bootIdFile!, 'boot-2\n');
    expect(() => execFileSync('sh', [p.guard, 'systemd'], { stdio: 'ignore' })).toThrow();
    expect(readFileSync(p.reportFile, 'utf8')).toMatch(/boot loop: 1 boots in a row without progress \(progress: 0,/);
    expect(existsSync(pwned)).toBe(false);
  });

  it('generates a systemd unit and an @reboot cron entry that run the guard', () => {
    const t = setup();
    // Each hook names itself to the guard, which logs it (via=systemd / via=cron in boots.log).
    expect(systemdUnit(t.spec)).toContain(`ExecStart=/bin/sh ${t.p.guard} systemd`);
    expect(systemdUnit(t.spec)).toContain('WantedBy=multi-user.target');
    expect(cronEntry(t.spec)).toMatch(new RegExp(`^@reboot root /bin/sh ${t.p.guard.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} cron$`, 'm'));
    expect(() => bootResumePaths({ id: 'bad id; rm -rf /' })).toThrow(/must match/);
  });
});
