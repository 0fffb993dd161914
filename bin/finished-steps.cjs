#!/usr/bin/env node
// Prints how many steps of a campaign journal are finished (done, failed or not needed): the progress measure
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
  // The finished states of src/campaign/journal.ts FINISHED_STATES ('not-needed': an adaptive iteration decided away).
  const row = db.prepare("SELECT COUNT(*) AS n FROM steps WHERE state IN ('done', 'failed', 'not-needed')").get();
  process.stdout.write(`${row.n}\n`);
} finally {
  db.close();
}
