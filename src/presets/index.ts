export type { Preset, PresetMatch, PresetName, Recipe, RecipeName } from "./matches.js";
export { presetNames, presets, recipes } from "./matches.js";
