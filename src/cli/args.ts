/** The commands' arguments, parsed with node:util's parseArgs; a mistyped option is refused with "did you mean". */
import { parseArgs } from "node:util";
import { suggestName } from "../config/errors.js";

/** Wrong arguments: the CLI prints the message and the command's usage, and exits 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";

  constructor(
    /** The command whose usage applies; undefined for the top level. */
    readonly command: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

export interface OptionSpec {
  type: "boolean" | "string";
  short?: string;
  /** For string options, the value's name in the usage, e.g. "file". */
  value?: string;
  description: string;
}

export interface CommandSpec {
  name: string;
  /** Required positional arguments, e.g. ["checkpoint"]. */
  positionals: readonly string[];
  options: Readonly<Record<string, OptionSpec>>;
  description: string;
}

export interface ParsedCommand {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

const HELP: OptionSpec = { type: "boolean", short: "h", description: "show this help" };

/** Parses a command's arguments (after the command name); throws UsageError naming the fault. */
export function parseCommand(spec: CommandSpec, argv: readonly string[]): ParsedCommand {
  const options = { ...spec.options, help: HELP };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: Object.fromEntries(
        Object.entries(options).map(([name, o]) => [name, o.short ? { type: o.type, short: o.short } : { type: o.type }]),
      ),
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(spec.name, parseArgsMessage(error as Error & { code?: string }, Object.keys(options)));
  }
  const values = parsed.values as ParsedCommand["values"];
  if (values.help) return { values, positionals: parsed.positionals };
  const missing = spec.positionals.slice(parsed.positionals.length);
  if (missing.length > 0) throw new UsageError(spec.name, `missing <${missing[0]}>`);
  const extra = parsed.positionals[spec.positionals.length];
  if (extra !== undefined) throw new UsageError(spec.name, `unexpected argument '${extra}'`);
  return { values, positionals: parsed.positionals };
}

/** parseArgs' error in the house style: the option, and the closest known one. */
function parseArgsMessage(error: Error & { code?: string }, known: readonly string[]): string {
  if (error.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const option = /'([^']+)'/.exec(error.message)?.[1] ?? "";
    const guess = closestName(option.replace(/^-+/, ""), known);
    return guess
      ? `unknown option '${option}' (did you mean '--${guess}'?)`
      : `unknown option '${option}'; options: ${known.map((k) => `--${k}`).join(", ")}`;
  }
  if (error.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    const option = /'(-[^' ]+)/.exec(error.message)?.[1];
    if (option && /argument missing/.test(error.message)) return `${option} needs a value`;
    if (option) return `${option} takes no value`;
  }
  return error.message;
}

const letters = (word: string): string => [...word.toLowerCase()].sort().join("");

/** The known name closest to `word`: suggestName's pick, or one with the same letters (a transposition: --froce). */
export function closestName(word: string, known: readonly string[]): string | undefined {
  return suggestName(word, known) ?? known.find((name) => letters(name) === letters(word));
}

/** The usage of one command: its line and its options. */
export function commandUsage(spec: CommandSpec): string {
  const options = { ...spec.options, help: HELP };
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ""}--${name}${o.value ? ` <${o.value}>` : ""}`;
    return `  ${flag.padEnd(22)} ${o.description}`;
  });
  return [`usage: ${synopsis(spec)}`, "", ...spec.description.split("\n").map((l) => `  ${l}`), "", "options:", ...rows].join("\n");
}

/** `textbrewer inspect <checkpoint> [--json]` */
export function synopsis(spec: CommandSpec): string {
  const flags = Object.entries(spec.options).map(([name, o]) => `[--${name}${o.value ? ` <${o.value}>` : ""}]`);
  return ["textbrewer", spec.name, ...spec.positionals.map((p) => `<${p}>`), ...flags].join(" ");
}
