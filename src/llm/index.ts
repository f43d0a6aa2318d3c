/** Causal language models: token-level KD with per-step token averaging, on-policy distillation, evaluation. */
export {
  CAUSAL_LM_ADAPTOR,
  CausalLMDistiller,
  type CausalLMDistillerOptions,
  type OnPolicyOptions,
} from "../distillers/causal-lm-distiller.js";
export { evaluateLm, type LmEvalOptions, type LmEvalResult, lmEvalCallback } from "./evaluation.js";
export { countTargetTokens, IGNORE_INDEX, TokenCountError } from "./tokens.js";
