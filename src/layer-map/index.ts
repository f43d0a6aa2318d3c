export type { LayerSelection, SimilarityMatrices } from "./select.js";
export { bestCut, monotoneMatch, selectLayers } from "./select.js";
export type { LayerMapSuggestion, LayerSimilarity, SuggestLayerMapOptions } from "./suggest.js";
export { suggestLayerMap } from "./suggest.js";
