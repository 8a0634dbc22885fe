/**
 * Option negotiation on the peer's SYN: window scaling (RFC 7323 §2.2), timestamps (RFC 7323 §3.2),
 * SACK-permitted (RFC 2018) and the MSS (RFC 9293 §3.7.1, RFC 6691), applied to both halves of a
 * connection.
 *
 * @module
 */

import type { TcpOptions } from "../wire/tcp.ts";
import type { TcpConfig } from "./config.ts";
import type { TcpReceiver } from "./receiver.ts";
import type { TcpSender } from "./sender.ts";

/** Sets whether timestamps and SACK are in use on both halves. */
export function setOptionFlags(
  sender: TcpSender,
  receiver: TcpReceiver,
  timestamps: boolean,
  sack: boolean,
): void {
  sender.timestamps = timestamps;
  receiver.timestamps = timestamps;
  sender.sack = sack;
  receiver.sack = sack;
}

/** Settles the options from the peer's SYN `opts` against `config`; returns the peer's MSS. */
export function negotiateOptions(
  config: TcpConfig,
  opts: TcpOptions,
  sender: TcpSender,
  receiver: TcpReceiver,
): number {
  // RFC 7323 §2.2: scaling only when both SYNs carry the option.
  if (config.windowScaling && opts.windowScale >= 0) {
    sender.sndScale = opts.windowScale;
    receiver.offerWindowScale = true;
  } else {
    receiver.offerWindowScale = false;
    sender.sndScale = 0;
    receiver.rcvScale = 0;
  }
  setOptionFlags(
    sender,
    receiver,
    config.timestamps && opts.hasTimestamps,
    config.sack && opts.sackPermitted,
  );
  if (sender.timestamps) receiver.tsRecent = opts.tsVal;
  // RFC 9293 §3.7.1: 536 when the option is absent; RFC 6691: never above what our MTU allows.
  const peerMss = opts.mss > 0 ? opts.mss : 536;
  const mss = Math.max(64, Math.min(peerMss, receiver.advertisedMss));
  sender.sendMss = mss - (sender.timestamps ? 12 : 0);
  sender.congestion.setMss(sender.sendMss);
  return peerMss;
}
