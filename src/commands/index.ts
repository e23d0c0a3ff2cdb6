import type { Command } from 'commander';

/** Adds every subcommand to the program (each module registers one verb). */
export function registerCommands(program: Command): void {
  void program;
}
