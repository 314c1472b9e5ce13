"""rnnkern -- prove that the sdist holds everything a wheel was built from.

    python3 packaging/check_sdist.py dist/rnnkern-0.1.0.tar.gz dist/rnnkern-...whl BUILD_DIR

BUILD_DIR is the wheel's CMake build folder (packaging/build_wheels.sh keeps it as
build/wheels/build-X.Y). Every file of the source tree that build read -- each
object's sources and headers (ninja's dependency log), the CMake files it was
configured from and the scripts its rules run (build.ninja and rules.ninja:
packaging/zig-link) -- and every file the wheel holds under rnnkern/ but the
compiled module must be in the sdist, as must pyproject.toml: then the sdist
compiles what the wheel was compiled from. CI runs this instead of compiling the
sdist a second time (the wheel's build and tests are that compile's);
`bash packaging/test_wheel.sh SDIST` compiles and tests it.
"""
import os
import re
import subprocess
import sys
import tarfile
import zipfile


def build_inputs(build_dir, root):
    """The files of the source tree under root (not its build/ folder, where the build
    folder and the build's own virtualenv are) that the build in build_dir read."""
    deps = subprocess.run(["ninja", "-C", build_dir, "-t", "deps"], check=True,
                          capture_output=True, text=True).stdout
    rules = ""
    for name in ("build.ninja", os.path.join("CMakeFiles", "rules.ninja")):
        with open(os.path.join(build_dir, name), encoding="utf-8") as f:
            rules += f.read() + "\n"
    if "#deps" not in deps:
        sys.exit(f"{build_dir}: ninja's dependency log is empty (was it built?)")
    skip = [os.path.realpath(build_dir) + os.sep, os.path.join(root, "build") + os.sep]
    found = set()
    for path in re.findall(r"(/[^\s:$\"']+)", deps + "\n" + rules):
        real = os.path.realpath(path)
        if not real.startswith(root + os.sep) or any(real.startswith(d) for d in skip):
            continue
        if os.path.isfile(real):
            found.add(os.path.relpath(real, root))
    return found


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    sdist, wheel, build_dir = argv[1:]
    root = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    with tarfile.open(sdist) as t:
        names = t.getnames()
    top = names[0].split("/")[0]
    held = {n[len(top) + 1:] for n in names if n.startswith(top + "/")}
    need = build_inputs(build_dir, root)
    if not any(p.endswith(".cc") for p in need) or "CMakeLists.txt" not in need:
        sys.exit(f"{build_dir}: no C++ source or CMakeLists.txt among the build's inputs")
    need.add("pyproject.toml")
    with zipfile.ZipFile(wheel) as z:
        packaged = {n for n in z.namelist() if n.startswith("rnnkern/") and not n.endswith("/")
                    and not os.path.basename(n).startswith("_core.")}
    need |= packaged
    missing = sorted(need - held)
    if missing:
        sys.exit(f"{os.path.basename(sdist)} lacks {len(missing)} file(s) the wheel was built "
                 f"from: " + ", ".join(missing[:20]) + (", ..." if len(missing) > 20 else ""))
    sources = sum(1 for p in need if p.endswith((".cc", ".cu", ".h", ".cuh")))
    print(f"{os.path.basename(sdist)}: holds the {len(need)} files the wheel was built from "
          f"({sources} C++ / CUDA sources and headers, {len(packaged)} of the package)")


if __name__ == "__main__":
    main(sys.argv)
