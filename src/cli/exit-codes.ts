/** nuksm's exit codes live in src/core/exit-codes.ts (the boot-resume guard needs them too). */
export { EXIT } from '../core/exit-codes.ts';
