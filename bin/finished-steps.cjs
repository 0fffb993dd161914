#!/usr/bin/env node
// Prints how many steps of a campaign journal are finished (done or failed): the progress measure
// of the boot-loop guard (src/host/boot-resume), run at every boot. Plain JavaScript on purpose:
// `nuksm status --finished` prints the same number but loads the TypeScript CLI through tsx, which
// takes minutes on a slow (TCG-emulated) machine at boot.
'use strict';
const Database = require('better-sqlite3');

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: finished-steps.cjs <campaign.sqlite>\n');
  process.exit(2);
}
const db = new Database(file, { readonly: true, fileMustExist: true });
try {
  const row = db.prepare("SELECT COUNT(*) AS n FROM steps WHERE state IN ('done', 'failed')").get();
  process.stdout.write(`${row.n}\n`);
} finally {
  db.close();
}
