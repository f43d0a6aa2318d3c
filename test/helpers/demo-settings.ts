import { DEFAULT_SETTINGS, type DemoSettings } from "../../examples/sentiment.js";

/** The sentiment demo's settings shrunk for a test: a 4-layer, 32-wide teacher trained from scratch, a few steps each. */
export function tinyDemoSettings(): DemoSettings {
  const s = structuredClone(DEFAULT_SETTINGS);
  s.maxLength = 32;
  s.batchSize = 16;
  s.teacher.epochs = 1;
  s.scratchTeacher = { layers: 4, hidden: 32, heads: 4, vocabSize: 400, epochs: 2, lr: 1e-3 };
  s.student.layerMap = [0, 3];
  s.student.epochs = 2;
  s.student.matches = [
    { layerT: 0, layerS: 0, feature: "hidden", loss: "hidden_mse", weight: 1 },
    { layerT: 2, layerS: 1, feature: "hidden", loss: "hidden_mse", weight: 1 },
    { layerT: 4, layerS: 2, feature: "hidden", loss: "hidden_mse", weight: 1 },
  ];
  s.timing.repeats = 2;
  return s;
}
