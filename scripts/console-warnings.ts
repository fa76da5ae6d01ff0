/**
 * Which lines of the processes' output `npm run up` shows on its console: warnings and errors, the
 * full logs staying in the data folder. The Temporal server's own are shown only while it is up:
 * while it starts its services look for each other («Frontend is not healthy yet»), and while it
 * stops they lose each other (dozens of «Not enough hosts to serve the request»); neither is news
 * to an operator, and both stay in its log.
 */
const TEMPORAL_PROCESSES = new Set(['temporal', 'temporal-server']);
const WARNING = /"level":"(warn|error)"|level=ERROR/;

export interface ConsoleWarnings {
  /** Receives one whole line of a process's output. */
  line(name: string, line: string): void;
  /** The Temporal server answers (true), or is about to stop (false). */
  temporalUp(up: boolean): void;
}

export function createConsoleWarnings(print: (text: string) => void = console.log): ConsoleWarnings {
  let temporalUp = false;
  return {
    line(name, line) {
      const shown = consoleLine(name, line, temporalUp);
      if (shown !== undefined) print(shown);
    },
    temporalUp(up) {
      temporalUp = up;
    },
  };
}

/** The text shown for one output line, or undefined to leave it to the log. */
export function consoleLine(name: string, line: string, temporalUp: boolean): string | undefined {
  if (!WARNING.test(line)) return undefined;
  if (TEMPORAL_PROCESSES.has(name) && !temporalUp) return undefined;
  return `[${name}] ${withoutStackTrace(line)}`;
}

/** A JSON log line without its Go stack trace (tens of lines on a console; the log keeps it). */
function withoutStackTrace(line: string): string {
  if (!line.includes('"stacktrace"')) return line;
  try {
    const { stacktrace: _stack, ...rest } = JSON.parse(line) as Record<string, unknown>;
    return JSON.stringify(rest);
  } catch {
    return line;
  }
}
