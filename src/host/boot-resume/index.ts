/**
 * Resume a campaign after the host boots: a systemd unit (and, for the paper's scalability flow,
 * an @reboot cron entry) runs a guard script, which runs the resume command unless
 *  - the stop file exists (the hooks remove themselves),
 *  - the pause file exists (nothing runs this boot; remove the file to continue next boot),
 *  - the campaign made no progress over the last `maxBootsWithoutProgress` boots (boot loop: the
 *    guard writes a report file, stops and removes the hooks).
 * Progress = what `progressCommand` prints (for a campaign: its finished steps, read from the
 * journal), recorded at each boot. Not a file's size or mtime: every boot rewrites progress.json.
 * Everything goes through an Executor, so the same code installs hooks on a physical host or inside
 * the emulated machine.
 */
import type { Executor } from '../exec/types.ts';
import { shellQuote } from '../exec/quote.ts';
import { DURABLE_RENAME_SH } from '../../core/durable-file.ts';

export interface BootResumeSpec {
  /** Short id, [A-Za-z0-9_-]; names the unit, cron file and state dir. */
  id: string;
  /** Command that resumes the campaign (argv). */
  command: readonly string[];
  /**
   * Command (argv) that prints the progress measure, e.g. the number of finished steps in the
   * campaign journal; a change between boots is progress. A failing command counts as no progress.
   */
  progressCommand: readonly string[];
  /** Boots in a row without progress before the guard stops (default 3). */
  maxBootsWithoutProgress?: number;
  /** Which hook(s) to install. */
  via: 'systemd' | 'cron' | 'both';
  /** State dir root (default /var/lib/nuksm/resume). */
  stateRoot?: string;
  /**
   * Exit codes after which the command is not run again in this boot (done, stopping for a
   * reboot, bad input …). Any other (a crash, a signal) is retried up to `attemptsPerBoot` times.
   */
  finalExitCodes?: readonly number[];
  /** Runs of the command per boot at most (default 3), `retryDelayS` apart (default 10). */
  attemptsPerBoot?: number;
  retryDelayS?: number;
  /** Working directory and extra environment of the resume command. */
  cwd?: string;
  env?: Record<string, string>;
  /** Where the boot id is read (default /proc/sys/kernel/random/boot_id; tests simulate boots). */
  bootIdFile?: string;
}

export interface BootResumePaths {
  stateDir: string;
  guard: string;
  pauseFile: string;
  stopFile: string;
  /** Written when the guard stops because of a boot loop. */
  reportFile: string;
  /** One line per boot: time, decision. */
  bootLog: string;
  unitName: string;
  unitFile: string;
  cronFile: string;
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;
/** The progress command may take this long (it opens the journal); then the boot counts as no progress. */
const PROGRESS_TIMEOUT_S = 120;
/** The state root is written into the unit and the cron line as is: plain path characters only. */
const SAFE_PATH = /^\/[A-Za-z0-9_.\/-]*$/;

export function bootResumePaths(spec: Pick<BootResumeSpec, 'id' | 'stateRoot'>): BootResumePaths {
  if (!ID.test(spec.id)) throw new Error(`boot-resume id '${spec.id}' must match ${ID}`);
  const root = spec.stateRoot ?? '/var/lib/nuksm/resume';
  if (!SAFE_PATH.test(root) || root.split('/').includes('..')) throw new Error(`boot-resume state root '${root}' must be an absolute path of letters, digits and _ . / - (no '..')`);
  const stateDir = `${root}/${spec.id}`;
  return {
    stateDir,
    guard: `${stateDir}/guard.sh`,
    pauseFile: `${stateDir}/pause`,
    stopFile: `${stateDir}/stop`,
    reportFile: `${stateDir}/boot-loop.report`,
    bootLog: `${stateDir}/boots.log`,
    unitName: `nuksm-resume-${spec.id}.service`,
    unitFile: `/etc/systemd/system/nuksm-resume-${spec.id}.service`,
    cronFile: `/etc/cron.d/nuksm-resume-${spec.id}`,
  };
}

/** One value per line, for a data file the guard reads with `read -r` (never evaluated). */
function dataLines(what: string, values: readonly string[]): string {
  for (const v of values) {
    if (/[\n\r\0]/.test(v)) throw new Error(`boot-resume: ${what} contains a newline or NUL byte, which the guard's data files cannot carry: ${JSON.stringify(v)}`);
  }
  return values.map((v) => `${v}\n`).join('');
}

const count = (what: string, v: number, min: number): number => {
  if (!Number.isInteger(v) || v < min || v > 1_000_000) throw new Error(`boot-resume: ${what} must be an integer ≥ ${min}, got ${v}`);
  return v;
};

/**
 * The guard's data files (next to guard.sh in the state dir): the resume command (`command`, one
 * argument per line), its environment (`env`, NAME=value per line), working directory (`cwd`) and
 * the progress file's path (`progress-file`). The guard reads them as data, so paths with quotes,
 * `$(…)` or spaces (a results directory, a campaign id) are never shell text. `progress-command`
 * holds the progress command, one argument per line, like `command`.
 */
export function guardDataFiles(spec: BootResumeSpec): { path: string; content: string }[] {
  const p = bootResumePaths(spec);
  if (spec.command.length === 0) throw new Error('boot-resume: empty resume command');
  const env = Object.entries(spec.env ?? {}).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`boot-resume: environment variable name '${k}' is not a shell name`);
    return `${k}=${v}`;
  });
  return [
    { path: `${p.stateDir}/command`, content: dataLines('the resume command', spec.command) },
    { path: `${p.stateDir}/env`, content: dataLines('the environment', env) },
    { path: `${p.stateDir}/cwd`, content: dataLines('the working directory', spec.cwd ? [spec.cwd] : []) },
    { path: `${p.stateDir}/progress-command`, content: dataLines('the progress command', spec.progressCommand) },
  ];
}

/**
 * The guard script (POSIX sh). Runs the resume command at most once per boot, under a lock. It
 * holds no campaign data: only the state dir (a checked plain path), numbers, and the hook's own
 * names; everything else comes from guardDataFiles().
 */
export function guardScript(spec: BootResumeSpec): string {
  const p = bootResumePaths(spec);
  const maxBoots = count('maxBootsWithoutProgress', spec.maxBootsWithoutProgress ?? 3, 1);
  const attempts = count('attemptsPerBoot', spec.attemptsPerBoot ?? 3, 1);
  const delay = count('retryDelayS', spec.retryDelayS ?? 10, 0);
  const finals = (spec.finalExitCodes ?? [0]).map((c) => count('finalExitCodes', c, 0));
  return `#!/bin/sh
# nuksm boot-resume guard for hook ${spec.id} (generated; see src/host/boot-resume).
# Its inputs are the data files next to it (command, env, cwd, progress-command), read as data.
state=${shellQuote(p.stateDir)}
via=\${1:-manual}
log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) boot=$boot via=$via $*" >> "$state/boots.log"; }
remove_hooks() {
  systemctl disable ${shellQuote(p.unitName)} >/dev/null 2>&1
  rm -f ${shellQuote(p.unitFile)} ${shellQuote(p.cronFile)}
}
boot=$(cat ${shellQuote(spec.bootIdFile ?? '/proc/sys/kernel/random/boot_id')} 2>/dev/null || echo unknown)
exec 9>"$state/lock"
flock -n 9 || exit 0
# One run per boot, whichever hook (systemd or cron) comes first.
[ "$(cat "$state/last-boot" 2>/dev/null)" = "$boot" ] && exit 0
echo "$boot" > "$state/last-boot"
if [ -e "$state/stop" ]; then log "stop file present: removing hooks"; remove_hooks; exit 0; fi
if [ -e "$state/pause" ]; then log "paused: not resuming this boot"; exit 0; fi
# The environment of the run (e.g. NODE_OPTIONS) applies to the progress command too.
if [ -f "$state/env" ]; then
  while IFS= read -r kv; do [ -n "$kv" ] && export "$kv"; done < "$state/env"
fi
# Progress: what the progress command prints (the campaign's finished steps, from its journal).
progress=$(
  set --
  while IFS= read -r arg; do set -- "$@" "$arg"; done < "$state/progress-command"
  [ "$#" -gt 0 ] && timeout ${PROGRESS_TIMEOUT_S} "$@" 2>/dev/null | tr -d '[:space:]'
)
[ -n "$progress" ] || progress=none
if [ "$(cat "$state/last-progress" 2>/dev/null)" = "$progress" ]; then
  n=$(( $(cat "$state/boots-without-progress" 2>/dev/null || echo 0) + 1 ))
else
  n=0
fi
echo "$progress" > "$state/last-progress"
echo "$n" > "$state/boots-without-progress"
if [ "$n" -ge ${maxBoots} ]; then
  echo "boot loop: $n boots in a row without progress (progress: $progress, from $state/progress-command; last boot $boot); resume stopped, hooks removed" > "$state/boot-loop.report"
  log "boot loop ($n boots without progress): stopping"
  remove_hooks
  exit 1
fi
log "resuming (boots without progress: $n)"
if [ -s "$state/cwd" ]; then
  cwd=$(cat "$state/cwd")
  cd "$cwd" || exit 1
fi
set --
while IFS= read -r arg; do set -- "$@" "$arg"; done < "$state/command"
[ "$#" -gt 0 ] || { log "no resume command in $state/command"; exit 1; }
attempt=1
while :; do
  "$@" >> "$state/resume.log" 2>&1
  rc=$?
  log "resume command exited $rc"
  case " ${finals.join(' ')} " in *" $rc "*) break ;; esac
  [ "$attempt" -ge ${attempts} ] && break
  attempt=$((attempt + 1))
  log "retrying the resume command ($attempt/${attempts}) in ${delay} s"
  sleep ${delay}
done
exit $rc
`;
}

export function systemdUnit(spec: BootResumeSpec): string {
  const p = bootResumePaths(spec);
  return `[Unit]
Description=nuksm: resume campaign ${spec.id} after boot
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=/bin/sh ${p.guard} systemd
Restart=no

[Install]
WantedBy=multi-user.target
`;
}

export function cronEntry(spec: BootResumeSpec): string {
  const p = bootResumePaths(spec);
  return `# nuksm: resume campaign ${spec.id} after boot (generated)\nSHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n@reboot root /bin/sh ${p.guard} cron\n`;
}

/**
 * Writes a file on the host behind exec atomically and durably, only when its content changes
 * (the Executor counterpart of src/core/durable-file.ts): a temp file next to it, fsync, rename,
 * fsync the directory. Returns whether it wrote.
 */
export async function writeHostFileDurable(exec: Executor, path: string, content: string): Promise<boolean> {
  const now = await exec.readFile(path).catch(() => null);
  if (now === content) return false;
  const tmp = `${path}.tmp-nuksm`;
  await exec.writeFile(tmp, content);
  await exec.run(['sh', '-c', DURABLE_RENAME_SH, 'sh', tmp, path], { timeoutMs: 60_000 });
  return true;
}

/**
 * Install the guard and the hook(s) on the host behind exec. Idempotent: files whose content is
 * unchanged are not rewritten (a resume re-arms the hooks without touching them), and systemd is
 * reloaded only when the unit changed.
 */
export async function installBootResume(exec: Executor, spec: BootResumeSpec): Promise<BootResumePaths> {
  const p = bootResumePaths(spec);
  await exec.run(['mkdir', '-p', p.stateDir], { timeoutMs: 15_000 });
  // Data files first: a guard never runs with another campaign's inputs.
  for (const f of guardDataFiles(spec)) await writeHostFileDurable(exec, f.path, f.content);
  if (await writeHostFileDurable(exec, p.guard, guardScript(spec))) await exec.run(['chmod', '755', p.guard], { timeoutMs: 15_000 });
  if (spec.via !== 'cron') {
    if (await writeHostFileDurable(exec, p.unitFile, systemdUnit(spec))) await exec.run(['systemctl', 'daemon-reload'], { timeoutMs: 60_000 });
    await exec.run(['systemctl', 'enable', p.unitName], { timeoutMs: 60_000 });
  }
  if (spec.via !== 'systemd') await writeHostFileDurable(exec, p.cronFile, cronEntry(spec));
  return p;
}

/** Remove the hooks (when the campaign ends); the state dir is kept for its logs. */
export async function removeBootResume(exec: Executor, spec: Pick<BootResumeSpec, 'id' | 'stateRoot'>): Promise<void> {
  const p = bootResumePaths(spec);
  await exec.run(['sh', '-c', 'systemctl disable "$1" >/dev/null 2>&1; rm -f "$2" "$3"; systemctl daemon-reload >/dev/null 2>&1; true', 'sh', p.unitName, p.unitFile, p.cronFile], { timeoutMs: 60_000 });
}

export async function pauseBootResume(exec: Executor, spec: Pick<BootResumeSpec, 'id' | 'stateRoot'>, paused: boolean): Promise<void> {
  const p = bootResumePaths(spec);
  await exec.run(paused ? ['touch', p.pauseFile] : ['rm', '-f', p.pauseFile], { timeoutMs: 15_000 });
}

export async function stopBootResume(exec: Executor, spec: Pick<BootResumeSpec, 'id' | 'stateRoot'>): Promise<void> {
  await exec.run(['touch', bootResumePaths(spec).stopFile], { timeoutMs: 15_000 });
  await removeBootResume(exec, spec);
}
