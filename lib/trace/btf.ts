/**
 * A small reader of BTF, the BPF Type Format, from a BPF ELF object: enough to learn the layout of the
 * structs the object shares with user space (member names, byte offsets and sizes, array lengths) and
 * the names of its global variables, maps and functions. The tracer's TypeScript layouts
 * (lib/trace/layout.ts) are checked against it, so that a change of bpf/trace_record.h without the
 * TypeScript side (or the reverse) fails the tests, as bpf2go's `-type` keeps Go in step with C.
 *
 * Formats: the ELF64 section header table (System V gABI, "Sections"), and the `.BTF` section as the
 * kernel documents it (Documentation/bpf/btf.rst, "Type Encoding" and "String Encoding"): a header, then
 * a type section of `struct btf_type` records (each followed by its kind's extra data) and a string
 * section. Type ids count from 1 in the order the records appear; id 0 is `void`.
 *
 * Bad input throws {@link BtfError}: this runs on the object netstack embeds, at build and test time.
 *
 * @module
 */

/** An object whose ELF or BTF cannot be read. */
export class BtfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BtfError";
  }
}

/** BTF kinds (`BTF_KIND_*`, include/uapi/linux/btf.h). */
export const BtfKind = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

/** One BTF type record, with the extra data of its kind. */
export interface BtfType {
  id: number;
  kind: number;
  /** The name ("" for anonymous types). */
  name: string;
  /** Size in bytes for INT, STRUCT, UNION, ENUM, ENUM64, FLOAT and DATASEC. */
  size: number;
  /** The referenced type for PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG, FUNC and VAR. */
  type: number;
  /** ARRAY: element type and count. */
  array?: { type: number; nelems: number };
  /** STRUCT, UNION: members with their bit offsets (and bitfield sizes, 0 when not a bitfield). */
  members?: { name: string; type: number; bitOffset: number; bitfieldSize: number }[];
  /** DATASEC: the variables of the section. */
  vars?: { type: number; offset: number; size: number }[];
}

/** A struct member as user space needs it: where it is and how big. */
export interface BtfMember {
  name: string;
  /** Byte offset within the struct. */
  offset: number;
  /** Size in bytes (arrays: the whole array). */
  size: number;
  /** Array length when the member is an array, else undefined. */
  length?: number;
}

/** A struct's layout as the compiler laid it out. */
export interface BtfStruct {
  name: string;
  size: number;
  members: BtfMember[];
}

/** Returns the contents of the ELF64 little-endian section called `name`, or undefined. */
export function elfSection(elf: Uint8Array, name: string): Uint8Array | undefined {
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  if (elf.length < 64 || view.getUint32(0) !== 0x7f454c46) throw new BtfError("not an ELF object");
  if (elf[4] !== 2 || elf[5] !== 1) throw new BtfError("not a 64-bit little-endian ELF object");
  const shoff = Number(view.getBigUint64(0x28, true));
  const shentsize = view.getUint16(0x3a, true);
  const shnum = view.getUint16(0x3c, true);
  const shstrndx = view.getUint16(0x3e, true);
  if (shentsize < 64 || shoff + shnum * shentsize > elf.length || shstrndx >= shnum) {
    throw new BtfError("ELF section header table out of bounds");
  }
  const section = (index: number) => {
    const at = shoff + index * shentsize;
    const offset = Number(view.getBigUint64(at + 24, true));
    const size = Number(view.getBigUint64(at + 32, true));
    if (offset + size > elf.length) throw new BtfError(`ELF section ${index} out of bounds`);
    return { nameOffset: view.getUint32(at, true), bytes: elf.subarray(offset, offset + size) };
  };
  const names = section(shstrndx).bytes;
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (cString(names, s.nameOffset) === name) return s.bytes;
  }
  return undefined;
}

function cString(bytes: Uint8Array, offset: number): string {
  if (offset >= bytes.length) throw new BtfError(`string offset ${offset} out of bounds`);
  let end = offset;
  while (end < bytes.length && bytes[end] !== 0) end++;
  return new TextDecoder().decode(bytes.subarray(offset, end));
}

/** The types of one `.BTF` section, with look-ups by name and layout helpers. */
export class Btf {
  /** Every type, indexed by id (index 0 is void and undefined). */
  readonly types: (BtfType | undefined)[];

  private constructor(types: (BtfType | undefined)[]) {
    this.types = types;
  }

  /** Reads the `.BTF` section of a BPF ELF object. */
  static fromElf(elf: Uint8Array): Btf {
    const section = elfSection(elf, ".BTF");
    if (section === undefined) throw new BtfError("the object has no .BTF section (built without -g?)");
    return Btf.parse(section);
  }

  /** Parses a raw `.BTF` section (header, type section, string section). */
  static parse(btf: Uint8Array): Btf {
    const view = new DataView(btf.buffer, btf.byteOffset, btf.byteLength);
    if (btf.length < 24 || view.getUint16(0, true) !== 0xeb9f) throw new BtfError("bad BTF magic");
    if (btf[2] !== 1) throw new BtfError(`BTF version ${btf[2]}, expected 1`);
    const hdrLen = view.getUint32(4, true);
    const typeOff = hdrLen + view.getUint32(8, true);
    const typeEnd = typeOff + view.getUint32(12, true);
    const strOff = hdrLen + view.getUint32(16, true);
    const strings = btf.subarray(strOff, strOff + view.getUint32(20, true));
    if (typeEnd > btf.length || strOff + strings.length > btf.length) throw new BtfError("BTF out of bounds");
    const types: (BtfType | undefined)[] = [undefined];
    let at = typeOff;
    const need = (bytes: number) => {
      if (at + bytes > typeEnd) throw new BtfError(`BTF type ${types.length} runs past the type section`);
    };
    while (at < typeEnd) {
      need(12);
      const info = view.getUint32(at + 4, true);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      const kindFlag = info >>> 31;
      const sizeOrType = view.getUint32(at + 8, true);
      const type: BtfType = {
        id: types.length,
        kind,
        name: cString(strings, view.getUint32(at, true)),
        size: sizeOrType,
        type: sizeOrType,
      };
      at += 12;
      switch (kind) {
        case BtfKind.INT:
        case BtfKind.VAR:
        case BtfKind.DECL_TAG:
          need(4);
          at += 4;
          break;
        case BtfKind.ARRAY:
          need(12);
          type.array = { type: view.getUint32(at, true), nelems: view.getUint32(at + 8, true) };
          at += 12;
          break;
        case BtfKind.STRUCT:
        case BtfKind.UNION:
          need(12 * vlen);
          type.members = [];
          for (let i = 0; i < vlen; i++, at += 12) {
            const offset = view.getUint32(at + 8, true);
            type.members.push({
              name: cString(strings, view.getUint32(at, true)),
              type: view.getUint32(at + 4, true),
              // With kind_flag set, the offset word holds the bitfield size above 24 bits of bit offset.
              bitOffset: kindFlag ? offset & 0xffffff : offset,
              bitfieldSize: kindFlag ? offset >>> 24 : 0,
            });
          }
          break;
        case BtfKind.ENUM:
        case BtfKind.FUNC_PROTO:
          need(8 * vlen);
          at += 8 * vlen;
          break;
        case BtfKind.ENUM64:
          need(12 * vlen);
          at += 12 * vlen;
          break;
        case BtfKind.DATASEC:
          need(12 * vlen);
          type.vars = [];
          for (let i = 0; i < vlen; i++, at += 12) {
            type.vars.push({
              type: view.getUint32(at, true),
              offset: view.getUint32(at + 4, true),
              size: view.getUint32(at + 8, true),
            });
          }
          break;
        case BtfKind.PTR:
        case BtfKind.FWD:
        case BtfKind.TYPEDEF:
        case BtfKind.VOLATILE:
        case BtfKind.CONST:
        case BtfKind.RESTRICT:
        case BtfKind.FUNC:
        case BtfKind.FLOAT:
        case BtfKind.TYPE_TAG:
          break;
        default:
          throw new BtfError(`BTF type ${types.length} has unknown kind ${kind}`);
      }
      types.push(type);
    }
    return new Btf(types);
  }

  /** The type with this id; throws for an id out of range. */
  type(id: number): BtfType {
    const type = this.types[id];
    if (type === undefined) throw new BtfError(`BTF type id ${id} does not exist`);
    return type;
  }

  /** Follows typedefs and qualifiers (const, volatile, restrict, type tags) to the underlying type. */
  resolve(id: number): BtfType {
    let type = this.type(id);
    for (let hops = 0; hops < 32; hops++) {
      switch (type.kind) {
        case BtfKind.TYPEDEF:
        case BtfKind.VOLATILE:
        case BtfKind.CONST:
        case BtfKind.RESTRICT:
        case BtfKind.TYPE_TAG:
          type = this.type(type.type);
          continue;
        default:
          return type;
      }
    }
    throw new BtfError(`BTF type ${id}: qualifier chain too long`);
  }

  /** Size in bytes of a type (pointers are 8 bytes: BPF is a 64-bit target). */
  sizeOf(id: number): number {
    const type = this.resolve(id);
    switch (type.kind) {
      case BtfKind.INT:
      case BtfKind.STRUCT:
      case BtfKind.UNION:
      case BtfKind.ENUM:
      case BtfKind.ENUM64:
      case BtfKind.FLOAT:
      case BtfKind.DATASEC:
        return type.size;
      case BtfKind.PTR:
        return 8;
      case BtfKind.ARRAY:
        return type.array!.nelems * this.sizeOf(type.array!.type);
      default:
        throw new BtfError(`BTF type ${id} (kind ${type.kind}) has no size`);
    }
  }

  /** Every type of `kind` called `name`. */
  named(kind: number, name: string): BtfType[] {
    return this.types.filter((t): t is BtfType => t !== undefined && t.kind === kind && t.name === name);
  }

  /** The layout of a struct type (by id, or a struct's name); throws when absent or a bitfield is met. */
  struct(idOrName: number | string): BtfStruct {
    let type: BtfType;
    if (typeof idOrName === "string") {
      const found = this.named(BtfKind.STRUCT, idOrName);
      if (found.length !== 1) {
        throw new BtfError(`BTF has ${found.length} structs named ${idOrName}, expected one`);
      }
      type = found[0];
    } else {
      type = this.resolve(idOrName);
    }
    if (type.kind !== BtfKind.STRUCT) throw new BtfError(`BTF type ${type.id} is not a struct`);
    return {
      name: type.name,
      size: type.size,
      members: type.members!.map((m) => {
        if (m.bitfieldSize !== 0 || m.bitOffset % 8 !== 0) {
          throw new BtfError(`struct ${type.name}: member ${m.name} is a bitfield`);
        }
        const resolved = this.resolve(m.type);
        const member: BtfMember = { name: m.name, offset: m.bitOffset / 8, size: this.sizeOf(m.type) };
        if (resolved.kind === BtfKind.ARRAY) member.length = resolved.array!.nelems;
        return member;
      }),
    };
  }

  /** The global variable called `name` (a VAR type), resolved to its type. */
  variable(name: string): BtfType {
    const found = this.named(BtfKind.VAR, name);
    if (found.length !== 1) {
      throw new BtfError(`BTF has ${found.length} variables named ${name}, expected one`);
    }
    return this.resolve(found[0].type);
  }

  /** The names of the variables of a data section (`.maps`, `.rodata`, ...). */
  sectionVariables(section: string): string[] {
    const found = this.named(BtfKind.DATASEC, section);
    if (found.length !== 1) throw new BtfError(`BTF has no section ${section}`);
    return found[0].vars!.map((v) => this.type(v.type).name);
  }

  /**
   * A BTF-defined map's attribute (libbpf's `__uint(name, N)` is a pointer to an array of N ints,
   * `__type(key, T)` a pointer to T): the number for `__uint`, the type id for `__type`.
   */
  mapAttribute(map: string, attribute: string): { value?: number; type?: number } {
    const definition = this.variable(map);
    const member = definition.members?.find((m) => m.name === attribute);
    if (member === undefined) throw new BtfError(`map ${map} has no ${attribute}`);
    const pointer = this.resolve(member.type);
    if (pointer.kind !== BtfKind.PTR) throw new BtfError(`map ${map}: ${attribute} is not a pointer`);
    const target = this.resolve(pointer.type);
    return target.kind === BtfKind.ARRAY ? { value: target.array!.nelems } : { type: pointer.type };
  }
}
