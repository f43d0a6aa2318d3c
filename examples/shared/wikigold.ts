/**
 * WikiGold: Wikipedia sentences annotated with CoNLL-2003 entity types (LOC, MISC, ORG, PER).
 *
 *   Dominic Balasuriya, Nicky Ringland, Joel Nothman, Tara Murphy, James R. Curran. "Named Entity Recognition in
 *   Wikipedia", Proceedings of the 2009 Workshop on The People's Web Meets NLP. Licensed CC BY 4.0.
 *
 * The file (`wikigold.conll.txt`) has one `word TAG` pair per line, a blank line between sentences and
 * `-DOCSTART- O` lines between documents. Tags are IO (`I-PER`, never `B-`): the CoNLL reader of `textbrewer-ts/data` turns them
 * into BIO.
 */
import { type ConllCorpus, parseConll, readConll } from "../../src/data/index.js";

export const WIKIGOLD_TYPES = ["LOC", "MISC", "ORG", "PER"] as const;
/** The BIO label set, index = class id: O, then B-/I- for each type (what `conllLabels` reads from the file). */
export const WIKIGOLD_LABELS = ["O", ...WIKIGOLD_TYPES.flatMap((t) => [`B-${t}`, `I-${t}`])] as const;

export const WIKIGOLD_CREDIT =
  "WikiGold (Balasuriya, Ringland, Nothman, Murphy, Curran: Named Entity Recognition in Wikipedia, 2009), CC BY 4.0";

export type WikiGold = ConllCorpus;

/** Parses the WikiGold text (`word TAG` lines): the CoNLL reader with its defaults. */
export function parseWikiGold(text: string, where = "wikigold"): WikiGold {
  return parseConll(text, {}, where);
}

/** Reads a WikiGold file (e.g. `wikigold.conll.txt`). */
export function readWikiGold(path: string): WikiGold {
  return readConll(path);
}
