/**
 * Userspace link emulator for the digital twin: a UDP relay per site pair that delays, jitters,
 * drops, rate-limits and blackholes WireGuard datagrams per direction (this kernel has no
 * sch_netem). In-process service, relay process client, and backend detection.
 */
export * from "./Backend.js"
export * from "./Client.js"
export * from "./ControlServer.js"
export * from "./Impairment.js"
export { type Admission, admit, ipUdpOverheadBytes, type LinkState, makeLinkState } from "./Link.js"
export * from "./LinkEmulator.js"
export * from "./Protocol.js"
export {
  canonicalAddress,
  LinkEmuBindFailed,
  LinkEmuDuplicatePair,
  LinkEmuPairNotFound,
  Relay,
  type RelayOptions,
} from "./Relay.js"
export { makeReleaser, nowMs, type Releaser, type TimerMode, type TimerOptions } from "./Releaser.js"
export { hashLabel, makeRng, type Rng } from "./Rng.js"
