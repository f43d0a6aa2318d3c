/**
 * Writes the op catalogue as Python TypedDicts (python_worker/textbrewer_worker/wire/ops_types.py): one class per op's
 * args as the handler receives them (defaults filled in) and one type per result, read from the catalogue's JSON
 * Schema. A value annotated with PYTHON_TYPE (a tensor, a tree of tensors) gets that type; a recursive or open value
 * `Any`; an object with fixed keys a TypedDict of its own; an object that allows other keys `dict[str, Any]`.
 */
import type { z } from "zod";
import { OP_NAMES, OPS, type OpSpec, wireJsonSchema } from "../worker/ops/index.js";
import { PYTHON_TYPE } from "../worker/ops/wire-types.js";

type Json = Record<string, unknown>;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function pascal(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join("");
}

class Emitter {
  readonly blocks: string[] = [];
  private definitions: Json = {};
  /** Class bodies already written, so that a shape used by several ops is one class. */
  private readonly classes = new Map<string, string>();

  withDefinitions(schema: Json): this {
    this.definitions = (schema.definitions as Json | undefined) ?? {};
    return this;
  }

  /** The Python type of `schema`; nested TypedDicts are emitted (before their users) under names derived from `name`. */
  type(schema: Json, name: string): string {
    if (typeof schema[PYTHON_TYPE] === "string") return schema[PYTHON_TYPE] as string;
    if (typeof schema.$ref === "string") {
      const target = this.definitions[schema.$ref.replace("#/definitions/", "")] as Json | undefined;
      return typeof target?.[PYTHON_TYPE] === "string" ? (target[PYTHON_TYPE] as string) : "Any";
    }
    if ("const" in schema) return `Literal[${JSON.stringify(schema.const)}]`;
    if (Array.isArray(schema.enum)) return `Literal[${schema.enum.map((v) => JSON.stringify(v)).join(", ")}]`;
    const alternatives = (schema.anyOf ?? schema.oneOf) as Json[] | undefined;
    if (alternatives) {
      const objects = alternatives.filter((s) => s.type === "object").length;
      return union(alternatives.map((s, i) => this.type(s, objects > 1 ? `${name}${memberName(s, i)}` : name)));
    }
    if (Array.isArray(schema.allOf) && schema.allOf.length === 1) return this.type(schema.allOf[0] as Json, name);
    if (Array.isArray(schema.type)) return union(schema.type.map((t) => this.type({ ...schema, type: t }, name)));
    switch (schema.type) {
      case "string":
        return "str";
      case "integer":
        return "int";
      case "number":
        return "float";
      case "boolean":
        return "bool";
      case "null":
        return "None";
      case "array":
        if (Array.isArray(schema.items)) return `tuple[${schema.items.map((s, i) => this.type(s as Json, `${name}${i}`)).join(", ")}]`;
        return `list[${schema.items ? this.type(schema.items as Json, `${name}Item`) : "Any"}]`;
      case "object":
        return this.object(schema, name);
      default:
        return "Any";
    }
  }

  private object(schema: Json, name: string): string {
    const properties = schema.properties as Record<string, Json> | undefined;
    const extra = schema.additionalProperties;
    if (!properties || Object.keys(properties).length === 0) {
      if (extra === false) return "dict[str, Any]";
      return `dict[str, ${extra && typeof extra === "object" && Object.keys(extra).length ? this.type(extra as Json, `${name}Value`) : "Any"}]`;
    }
    if (extra !== false) return "dict[str, Any]"; // open: only some keys are known
    return this.typedDict(name, properties, new Set((schema.required as string[] | undefined) ?? []));
  }

  typedDict(name: string, properties: Record<string, Json>, required: Set<string>): string {
    const fields = Object.entries(properties).map(([key, s]) => {
      if (!IDENTIFIER.test(key)) throw new Error(`${name}.${key}: not a Python identifier`);
      const t = this.type(s, `${name}${pascal(key)}`);
      return `    ${key}: ${required.has(key) ? t : `NotRequired[${t}]`}`;
    });
    const body = fields.join("\n");
    const known = this.classes.get(body);
    if (known) return known;
    this.classes.set(body, name);
    this.blocks.push(`class ${name}(TypedDict):\n${body}`);
    return name;
  }
}

function memberName(schema: Json, index: number): string {
  const properties = (schema.properties ?? {}) as Record<string, Json>;
  const tag = Object.values(properties).find((p) => typeof p.const === "string");
  return tag ? pascal(tag.const as string) : String(index);
}

function union(types: string[]): string {
  const unique = [...new Set(types)];
  return unique.includes("Any") ? "Any" : unique.join(" | ");
}

function schemaOf(spec: z.ZodType, io: "input" | "output"): Json {
  return wireJsonSchema(spec, io);
}

export function renderOpsTypes(): string {
  const emitter = new Emitter();
  for (const name of OP_NAMES) {
    const spec: OpSpec = OPS[name];
    const base = pascal(name);
    // the handler's view: its args after defaults (output), its result as TypeScript reads it (input)
    const args = schemaOf(spec.args, "output");
    emitter.withDefinitions(args);
    const argsType = emitter.type(args, `${base}Args`);
    if (argsType !== `${base}Args`) emitter.blocks.push(`${base}Args: TypeAlias = ${argsType}`);
    const result = schemaOf(spec.result, "input");
    emitter.withDefinitions(result);
    const resultType = emitter.type(result, `${base}Result`);
    if (resultType !== `${base}Result`) emitter.blocks.push(`${base}Result: TypeAlias = ${resultType}`);
  }
  return [
    '"""Generated by `npm run gen:protocol` from the op catalogue (src/worker/ops/); do not edit.',
    "",
    "Each op's args as its handler receives them (validated against ops_schema.json, defaults filled in) and its",
    'result as TypeScript reads it."""',
    "",
    "from __future__ import annotations",
    "",
    "from typing import Any, Literal, TypeAlias, TypedDict",
    "",
    "import torch",
    "from typing_extensions import NotRequired  # typing has it from Python 3.11",
    "",
    "",
    emitter.blocks.join("\n\n\n"),
    "",
  ].join("\n");
}
