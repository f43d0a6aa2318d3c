export { presets, recipes, presetNames } from "./matches.js";
export type { Preset, PresetMatch, PresetName, Recipe, RecipeName } from "./matches.js";
