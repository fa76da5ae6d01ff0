/**
 * Every command of the operator CLI, in the order `k2 --help` lists them (grouped by their first word).
 */
import type { Command } from './command';
import { caseCommands } from './case';
import { replayCommands } from './replay';
import { scanCommands } from './scan';
import { actionCommands } from './actions';
import { outboxCommands } from './outbox';
import { gkbCommands } from './gkb';
import { filesCommands } from './files';

export const commands: Command[] = [
  ...caseCommands,
  ...replayCommands,
  ...actionCommands,
  ...scanCommands,
  ...outboxCommands,
  ...gkbCommands,
  ...filesCommands,
];
