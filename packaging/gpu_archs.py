"""The GPU code a built extension carries: each entry of its CUDA fat binaries
(the ELF section .nv_fatbin) as kind (SASS = a cubin, PTX) and architecture,
read from the fat binary's own headers -- what `cuobjdump --list-elf --list-ptx`
lists, for machines without the CUDA tools.

    python3 packaging/gpu_archs.py path/to/_core*.so
"""
import struct
import sys

FATBIN_MAGIC = 0xBA55ED50


def sections(data):
    """name -> (offset, size) of a 64-bit little-endian ELF's sections."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError("not a 64-bit ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    hdrs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    stroff = hdrs[shstrndx][4]
    out = {}
    for h in hdrs:
        name_end = data.index(b"\0", stroff + h[0])
        out[data[stroff + h[0]:name_end].decode()] = (h[4], h[5])
    return out


def entries(blob):
    """(kind, sm, bytes) of every entry of the fat binaries in blob."""
    found, pos = [], 0
    while pos + 16 <= len(blob):
        magic, _version, header, size = struct.unpack_from("<IHHQ", blob, pos)
        if magic != FATBIN_MAGIC:
            pos += 8   # fat binaries are 8-byte aligned in the section
            continue
        e, end = pos + header, pos + header + size
        while e + 32 <= end:
            kind, _unk, eheader, payload = struct.unpack_from("<HHIQ", blob, e)
            arch, = struct.unpack_from("<I", blob, e + 28)
            found.append(({1: "PTX", 2: "SASS"}.get(kind, f"kind{kind}"), arch, payload))
            if eheader == 0:
                break
            e += eheader + payload
        pos = end
    return found


def main(path):
    with open(path, "rb") as f:
        data = f.read()
    sec = sections(data)
    if ".nv_fatbin" not in sec:
        print(f"{path}: no CUDA code (no .nv_fatbin section)")
        return 1
    off, size = sec[".nv_fatbin"]
    per = {}
    for kind, arch, nbytes in entries(data[off:off + size]):
        per[(arch, kind)] = per.get((arch, kind), 0) + nbytes
    print(f"{path}: .nv_fatbin {size // 1024} KiB: " +
          ", ".join(f"{kind} sm_{arch} {n // 1024} KiB" for (arch, kind), n in sorted(per.items())))
    return 0 if per else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
