export type { Preset, PresetMatch, PresetName, Recipe, RecipeName } from "./matches.js";
export { presetNames, presets, recipes } from "./matches.js";
export type { RecipePlan, RunnableRecipe } from "./recipe-plan.js";
export { formatRecipePlan, RUNNABLE_RECIPES, recipePlan } from "./recipe-plan.js";
