/**
 * The vocabulary of a TCP connection's state machine shared by the connection, its layer and the
 * application: states (RFC 9293 §3.3.2), readiness events, close reasons and API misuse errors.
 *
 * @module
 */

/** Connection states of RFC 9293 §3.3.2 (LISTEN lives in the layer's listeners). */
export type TcpState =
  | "CLOSED"
  | "SYN_SENT"
  | "SYN_RECEIVED"
  | "ESTABLISHED"
  | "FIN_WAIT_1"
  | "FIN_WAIT_2"
  | "CLOSE_WAIT"
  | "CLOSING"
  | "LAST_ACK"
  | "TIME_WAIT";

/** Readiness bits passed to `TcpConnection.onEvent`. */
export const TcpEvent = {
  /** The handshake completed (ESTABLISHED). */
  OPEN: 1,
  /** New bytes are readable (or end of stream, see EOF). */
  READABLE: 2,
  /** Send buffer space became free. */
  WRITABLE: 4,
  /** The peer's FIN arrived: after the buffered bytes, `TcpConnection.recv` returns null. */
  EOF: 8,
  /** The connection reached CLOSED; `TcpConnection.error` says why, if abnormally. */
  CLOSED: 16,
} as const;

/** See `TcpConnection.stats()`. */
export interface TcpConnectionStats {
  /** Connection state. */
  state: TcpState;
  /** Loss recovery phase. */
  recovery: "none" | "fast" | "timeout";
  /** Congestion window (bytes). */
  cwnd: number;
  /** Slow start threshold (bytes). */
  ssthresh: number;
  /** RFC 6675 pipe estimate (bytes). */
  pipe: number;
  /** SND.NXT − SND.UNA. */
  flight: number;
  /** Bytes the peer SACKed. */
  sackedBytes: number;
  /** Queued bytes not yet sent. */
  unsent: number;
  /** Peer's window (bytes). */
  sndWnd: number;
  /** Our advertised window remaining (bytes). */
  rcvWnd: number;
  /** Smoothed RTT (ms, −1 unknown). */
  srtt: number;
  /** Current RTO (ms). */
  rto: number;
  /** Consecutive retransmission timeouts. */
  retries: number;
  /** Disjoint out-of-order ranges held. */
  outOfOrderRanges: number;
}

/** Why a connection ended abnormally. */
export type TcpCloseError = "reset" | "refused" | "timeout" | "aborted";

/** Misuse of the application API (e.g. sending after shutdown); never raised for received segments. */
export class TcpStateError extends Error {
  /** Creates the error with a message naming the operation and state. */
  constructor(message: string) {
    super(message);
    this.name = "TcpStateError";
  }
}

/** States in which data and FINs are sent (and the send timers run): synchronized, FIN not yet acknowledged. */
export const SYNCHRONIZED_SEND_STATES: ReadonlySet<TcpState> = new Set([
  "ESTABLISHED",
  "CLOSE_WAIT",
  "FIN_WAIT_1",
  "CLOSING",
  "LAST_ACK",
]);
