export type { ReplacementSchedule, TheseusDistillerOptions, TheseusState } from "./theseus-distiller.js";
export { replacementSchedule, TheseusDistiller, theseusCreateArgs, theseusCreateResult, theseusStateResult } from "./theseus-distiller.js";
