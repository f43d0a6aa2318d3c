/** Teacher features on the wire: which entries of the teacher adaptor's features are cached, and in which form. */
import { z } from "zod";
import { FEATURES } from "../../config/distillation-config.js";
import { tensor } from "./wire-types.js";

/** How cached features are stored: float32, float16, or int8 with one float32 scale per row (last dim). */
export const FEATURE_DTYPES = ["float32", "float16", "int8"] as const;
export const featureDtype = z.enum(FEATURE_DTYPES);

/** One entry of the teacher adaptor's `feature` list (after the adaptor), as a match names it. */
export const featureRef = z.strictObject({ feature: z.enum(FEATURES), layer: z.int() });

/** The teacher features to return, in this order, in `dtype` (int8: two tensors each, the rows and their scales). */
export const featureSelection = z.strictObject({ items: z.array(featureRef).min(1), dtype: featureDtype });

/** Cached teacher features standing in for the teacher's forward: `tensors` as `featureSelection` returns them. */
export const cachedFeatures = z.strictObject({ ...featureSelection.shape, tensors: z.array(tensor) });
