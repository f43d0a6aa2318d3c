/** `textbrewer-ts/guidance`: which layers to copy and match (suggestLayerMap), and the named recipes as plans. */
export * from "../layer-map/index.js";
export type { RecipePlan, RunnableRecipe } from "../presets/index.js";
export { formatRecipePlan, RUNNABLE_RECIPES, recipePlan } from "../presets/index.js";
