/**
 * The one POSIX shell quoting function. Every command that has to pass through a shell (SSH
 * always does: the server runs the command string with the user's login shell) is built from an
 * argument array with it, so no argument is ever interpreted by that shell.
 */
const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quote one argument for a POSIX shell: safe words stay bare, everything else is single-quoted. */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) throw new Error('a shell argument cannot contain a NUL byte');
  if (arg !== '' && SAFE_WORD.test(arg)) return arg;
  // Inside single quotes nothing is special except the quote itself: close, emit \', reopen.
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Quote an argument array into one command line. */
export function shellJoin(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('empty command');
  return argv.map(shellQuote).join(' ');
}
