/** The training plan that train_configure sends once per run: its one definition lives with the loop. */
export { TrainPlan as trainPlan } from "../../train/plan.js";
