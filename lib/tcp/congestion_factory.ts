/**
 * Chooses a congestion controller by name. Kept apart from the interface (congestion.ts) so that the
 * implementations import the interface without an import cycle.
 *
 * @module
 */

import type { CongestionControlName } from "./config.ts";
import type { CongestionControl } from "./congestion.ts";
import { CubicCongestionControl } from "./cubic.ts";
import { NewRenoCongestionControl } from "./new_reno.ts";

/** Creates the controller `name` for a sender with segment size `mss`. */
export function createCongestionControl(name: CongestionControlName, mss: number): CongestionControl {
  return name === "newreno" ? new NewRenoCongestionControl(mss) : new CubicCongestionControl(mss);
}
