export type { ReplacementSchedule, TheseusDistillerOptions, TheseusState } from "./theseus-distiller.js";
export { TheseusDistiller } from "./theseus-distiller.js";
