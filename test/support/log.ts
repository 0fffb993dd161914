/** A system test's progress lines on stderr, tagged with the file and the wall-clock time (UTC), so a
 * CI log shows where a long file spends its minutes. */
export function testLog(tag: string): (line: string) => void {
  return (line) => process.stderr.write(`[${tag} ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}
