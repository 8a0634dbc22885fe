/**
 * Attaching netstack trace's programs: tcx or XDP for ingress and TC for egress, all as BPF links where
 * the kernel allows, so that the programs are detached when the link file descriptors close — at exit,
 * and also when the process is killed.
 *
 * - Ingress, `--ingress-hook auto` (see {@link chooseIngressHook}): a tcx ingress link on virtual devices
 *   (veth, bridge, TUN, loopback), where XDP could only be generic, and generic (skb) XDP copies most
 *   packets before the program runs; generic XDP on physical NICs. The tcx program sees what XDP sees
 *   (the frame from its link-layer header, every packet, before the stack), and puts back the VLAN tag
 *   the kernel takes out of the frame between the two hooks (bpf/trace.bpf.c).
 * - XDP: `bpf_link_create(prog, ifindex, BPF_XDP, {flags: mode})`. libbpf 1.1's
 *   `bpf_program__attach_xdp` makes the same link but cannot choose the mode, so the call is made
 *   directly with XDP_FLAGS_SKB_MODE (generic) or XDP_FLAGS_DRV_MODE (native). XDP is generic unless
 *   `--mode native` asks otherwise: native XDP makes many physical drivers reconfigure their rings and
 *   reset the link, and on a veth it gives up GRO (~16 → ~4.6 Gbit/s measured).
 * - XDP holds one program per interface. When another one is there (a second netstack trace, or any
 *   other tool), ingress falls back to a tcx ingress link, a hook several programs share, and says so.
 * - TC egress: a tcx link (`bpf_link_create(prog, ifindex, BPF_TCX_EGRESS = 47)`, kernel 6.6+; the
 *   program was loaded with expected attach type 47). On older kernels the link call fails and the
 *   program is attached as a clsact direct-action filter instead, removed by {@link Attachment.detach};
 *   a killed process leaves that filter behind (remove it with `tc filter del dev NAME egress`).
 *
 * @module
 */

import { AttachType, linkCreate, tcAttach, TcAttachPoint, tcDetach, XdpFlags } from "../ffi/libbpf.ts";
import { isRoot, libc } from "../ffi/libc.ts";
import { Errno, SystemError } from "../ffi/errno.ts";
import { RuntimeError } from "../errors.ts";
import type { Direction } from "./record.ts";

/** `--mode`. */
export type XdpModeOption = "auto" | "native" | "generic";
/** `--ingress-hook`: `auto` = tcx on virtual devices, generic XDP on physical ones (see {@link chooseIngressHook}). */
export type IngressHookOption = "auto" | "xdp" | "tcx";
/** `--egress-hook`. */
export type EgressHookOption = "auto" | "tcx" | "clsact";

/** One program attached to one interface. */
export interface Attachment {
  readonly iface: string;
  readonly ifindex: number;
  readonly direction: Direction;
  /** `xdp/generic`, `xdp/native`, `tcx` or `clsact`: what the summary line shows. */
  readonly hook: string;
  /** The link type of the frames this hook sees (pcap LINKTYPE_*): Ethernet or raw IP. */
  readonly linkType: number;
  /** Detaches (closes the link or removes the filter). Idempotent. */
  detach(): void;
}

/** Whether an interface is a virtual device (no bus device behind it), judged from sysfs. */
export function isVirtualInterface(name: string): boolean {
  try {
    Deno.statSync(`/sys/class/net/${name}/device`);
    return false;
  } catch {
    return true;
  }
}

const PRIVILEGE_HINT = "run as root, or with CAP_BPF and CAP_NET_ADMIN";

/** A RuntimeError with one clear line for a failed attach or load. */
export function explainError(error: unknown, iface: string, what: string): RuntimeError {
  if (!(error instanceof SystemError)) return new RuntimeError(`${what} on ${iface} failed: ${error}`);
  switch (error.errno) {
    case Errno.EPERM:
    case Errno.EACCES:
      return new RuntimeError(
        `${what} on ${iface}: permission denied (${
          isRoot() ? "missing CAP_BPF or CAP_NET_ADMIN" : "not root"
        }): ` +
          PRIVILEGE_HINT,
        { cause: error },
      );
    case Errno.ENODEV:
    case Errno.ENXIO:
      return new RuntimeError(`interface ${iface} not found`, { cause: error });
    case Errno.EOPNOTSUPP:
    case Errno.ENOTSUPP:
      return new RuntimeError(
        `${iface}: the driver does not support native XDP: use --mode generic`,
        { cause: error },
      );
    case Errno.EBUSY:
    case Errno.EEXIST:
      return new RuntimeError(
        `${iface}: another XDP program is already attached (see \`ip link show ${iface}\`) and tcx ingress is unavailable; detach it first`,
        { cause: error },
      );
    default:
      return new RuntimeError(`${what} on ${iface} failed: ${error.message}`, { cause: error });
  }
}

/** Where a program goes: the interface and its link type. */
export interface AttachTarget {
  readonly iface: string;
  readonly ifindex: number;
  readonly linkType: number;
}

function linkAttachment(target: AttachTarget, direction: Direction, hook: string, fd: number) {
  let open = true;
  return {
    iface: target.iface,
    ifindex: target.ifindex,
    linkType: target.linkType,
    direction,
    hook,
    detach() {
      if (!open) return;
      open = false;
      libc().close(fd);
    },
  } satisfies Attachment;
}

function isBusy(error: unknown): boolean {
  return error instanceof SystemError && (error.errno === Errno.EBUSY || error.errno === Errno.EEXIST);
}

/**
 * Which ingress hook `auto` picks for an interface: tcx ingress on virtual devices (veth, bridge, TUN,
 * loopback…), where XDP could only be generic; generic XDP on physical ones. `--mode native|generic`
 * asks for XDP by name and so does `--ingress-hook xdp`.
 *
 * Why tcx on virtual devices: generic (skb) XDP must give the program a linear frame with
 * XDP_PACKET_HEADROOM (256 bytes) in front of it, so for every skb that is cloned, non-linear or has
 * less headroom — every frame an AF_PACKET or UDP sender puts on a veth — the kernel reallocates the
 * head and copies the packet before the program runs (netif_receive_generic_xdp). A tcx program reads
 * the skb where it is. On a veth the receive path runs on the sender's CPU: per 60-byte packet the hook
 * added ~260 ns with generic XDP, ~150 ns at tcx (scripts/bench_trace.ts; numbers in docs/cli.md).
 */
export function chooseIngressHook(
  iface: string,
  mode: XdpModeOption,
  hook: IngressHookOption,
  virtual: (name: string) => boolean = isVirtualInterface,
): "xdp" | "tcx" {
  if (hook !== "auto") return hook;
  if (mode !== "auto") return "xdp";
  return virtual(iface) ? "tcx" : "xdp";
}

/**
 * Attaches the ingress program on the hook {@link chooseIngressHook} picks: a tcx ingress link
 * (`tcxProgramFd`), or XDP in `mode` (auto = generic). When another program already holds the
 * interface's XDP hook, XDP falls back to tcx ingress after telling `onFallback` why; when the kernel
 * has no tcx (before 6.6), `auto` falls back to generic XDP.
 */
export function attachIngress(
  xdpProgramFd: number,
  tcxProgramFd: number,
  target: AttachTarget,
  mode: XdpModeOption,
  onFallback?: (reason: string) => void,
  hook: IngressHookOption = "auto",
): Attachment {
  const { iface, ifindex } = target;
  if (chooseIngressHook(iface, mode, hook) === "tcx") {
    try {
      return linkAttachment(
        target,
        "ingress",
        "tcx",
        linkCreate(tcxProgramFd, ifindex, AttachType.TCX_INGRESS),
      );
    } catch (error) {
      const noTcx = error instanceof SystemError &&
        (error.errno === Errno.EINVAL || error.errno === Errno.EOPNOTSUPP);
      if (hook === "tcx" || !noTcx) throw explainError(error, iface, "attaching tcx ingress");
      onFallback?.(`${iface}: tcx unavailable (${error.code}); tracing ingress with generic XDP`);
    }
  }
  const xdpMode = mode === "native" ? "native" : "generic";
  const flags = xdpMode === "native" ? XdpFlags.DRV_MODE : XdpFlags.SKB_MODE;
  try {
    return linkAttachment(
      target,
      "ingress",
      `xdp/${xdpMode}`,
      linkCreate(xdpProgramFd, ifindex, AttachType.XDP, flags),
    );
  } catch (error) {
    if (!isBusy(error)) throw explainError(error, iface, "attaching XDP");
    try {
      const fd = linkCreate(tcxProgramFd, ifindex, AttachType.TCX_INGRESS);
      onFallback?.(
        `${iface}: another XDP program is already attached (see \`ip link show ${iface}\`); tracing ingress with tcx instead`,
      );
      return linkAttachment(target, "ingress", "tcx", fd);
    } catch {
      throw explainError(error, iface, "attaching XDP");
    }
  }
}

/** Attaches the TC egress program as a tcx link, or as a clsact filter when tcx is missing or asked for. */
export function attachEgress(
  programFd: number,
  target: AttachTarget,
  hook: EgressHookOption,
  onFallback?: (reason: string) => void,
): Attachment {
  const { iface, ifindex } = target;
  try {
    if (hook !== "clsact") {
      try {
        return linkAttachment(
          target,
          "egress",
          "tcx",
          linkCreate(programFd, ifindex, AttachType.TCX_EGRESS),
        );
      } catch (error) {
        const noTcx = error instanceof SystemError &&
          (error.errno === Errno.EINVAL || error.errno === Errno.EOPNOTSUPP);
        if (hook === "tcx" || !noTcx) throw error;
        onFallback?.(
          `tcx unavailable (${error.code}); using a clsact filter, which a killed process leaves behind`,
        );
      }
    }
    const filter = tcAttach(ifindex, TcAttachPoint.EGRESS, programFd);
    let attached = true;
    return {
      iface,
      ifindex,
      linkType: target.linkType,
      direction: "egress",
      hook: "clsact",
      detach() {
        if (!attached) return;
        attached = false;
        tcDetach(filter);
      },
    };
  } catch (error) {
    throw explainError(error, iface, "attaching TC egress");
  }
}
