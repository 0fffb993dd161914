/**
 * GRUB menu entries from grub.cfg, as grub-reboot accepts them: a top-level title or id, or
 * "Submenu title>Entry title" for entries inside a submenu (Debian/Ubuntu put older kernels there).
 */

export interface GrubEntry {
  title: string;
  /** $menuentry_id_option value, e.g. 'gnulinux-5.4.0-advanced-…'. */
  id: string | null;
  /** Enclosing submenus, outermost first. */
  submenus: { title: string; id: string | null }[];
}

const QUOTED = /^\s*(menuentry|submenu)\s+(?:'([^']*)'|"([^"]*)")(.*)$/;

export function parseGrubMenu(cfg: string): GrubEntry[] {
  const entries: GrubEntry[] = [];
  // Stack of open blocks: a submenu, or null for any other `{` (menuentry, if, function).
  const stack: ({ title: string; id: string | null } | null)[] = [];
  for (const line of cfg.split('\n')) {
    const m = QUOTED.exec(line);
    if (m) {
      const title = m[2] ?? m[3] ?? '';
      const id = /\$menuentry_id_option\s+'([^']+)'/.exec(m[4])?.[1] ?? null;
      if (m[1] === 'menuentry') entries.push({ title, id, submenus: stack.filter((s) => s !== null) });
      if (m[4].trimEnd().endsWith('{')) stack.push(m[1] === 'submenu' ? { title, id } : null);
      continue;
    }
    const opens = (line.match(/\{\s*$/) ? 1 : 0);
    if (opens) stack.push(null);
    if (/^\s*\}\s*$/.test(line)) stack.pop();
  }
  return entries;
}

/** The names grub-reboot would accept for an entry. */
export function grubNamesOf(entry: GrubEntry): string[] {
  const own = [entry.title, ...(entry.id ? [entry.id] : [])];
  // Each level may be named by title or id: "Advanced options for Ubuntu>Ubuntu, with Linux 5.4.0".
  let names = [''];
  for (const sub of entry.submenus) {
    const levels = [sub.title, ...(sub.id ? [sub.id] : [])];
    names = names.flatMap((prefix) => levels.map((l) => `${prefix}${l}>`));
  }
  return names.flatMap((prefix) => own.map((n) => `${prefix}${n}`));
}

/** Does `bootEntry` (title, id, or 'Submenu>Entry') name an entry of the menu? */
export function findGrubEntry(entries: readonly GrubEntry[], bootEntry: string): GrubEntry | null {
  return entries.find((e) => grubNamesOf(e).includes(bootEntry)) ?? null;
}
