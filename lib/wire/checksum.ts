/**
 * The Internet checksum (RFC 1071): the 16-bit ones' complement of the ones' complement sum.
 *
 * Sums are kept as plain numbers and folded only at the end, which is safe for any packet size this
 * stack handles (a 64 KiB segment adds at most 2^15 words of 2^16, far below 2^53).
 *
 * @module
 */

/**
 * Adds the bytes `data[start..end)` as big-endian 16-bit words to `initial` and returns the unfolded sum.
 * An odd trailing byte is padded with a zero byte on the right, as RFC 1071 §4.1 specifies.
 */
export function sumWords(data: Uint8Array, start = 0, end = data.length, initial = 0): number {
  let sum = initial;
  let i = start;
  const even = end - ((end - start) & 1);
  // Unrolled by 4 words: the checksum is on the per-packet hot path (every TCP/UDP segment).
  for (; i + 8 <= even; i += 8) {
    sum += ((data[i] << 8) | data[i + 1]) + ((data[i + 2] << 8) | data[i + 3]) +
      ((data[i + 4] << 8) | data[i + 5]) + ((data[i + 6] << 8) | data[i + 7]);
  }
  for (; i < even; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (even !== end) sum += data[end - 1] << 8;
  return sum;
}

/** Folds a sum from {@link sumWords} to 16 bits with end-around carry (not yet complemented). */
export function foldSum(sum: number): number {
  // Two folds are enough while sum < 2^32; loop for larger sums.
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** The checksum field value for `data[start..end)`: the complement of the folded sum. */
export function internetChecksum(data: Uint8Array, start = 0, end = data.length, initial = 0): number {
  return ~foldSum(sumWords(data, start, end, initial)) & 0xffff;
}

/**
 * The unfolded sum of the IPv4 pseudo-header used by TCP and UDP checksums (RFC 793 §3.1, RFC 768).
 * Addresses are unsigned 32-bit numbers in host order.
 */
export function ipv4PseudoHeaderSum(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}

/**
 * Incrementally updates a checksum field after a 16-bit word changed from `oldWord` to `newWord`
 * (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')).
 */
export function updateChecksum16(checksum: number, oldWord: number, newWord: number): number {
  const sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return ~foldSum(sum) & 0xffff;
}

/**
 * The unfolded sum of the IPv6 pseudo-header (RFC 8200 §8.1): source and destination address read from
 * `bytes` at `srcOffset` and `dstOffset`, the upper-layer length and the next header value.
 */
export function ipv6PseudoHeaderSum(
  bytes: Uint8Array,
  srcOffset: number,
  dstOffset: number,
  nextHeader: number,
  length: number,
): number {
  return sumWords(bytes, srcOffset, srcOffset + 16, sumWords(bytes, dstOffset, dstOffset + 16)) +
    (length >>> 16) + (length & 0xffff) + nextHeader;
}
