/* rnnkern -- linked into the portable build (packaging/zig-link): what objects
   compiled against a newer glibc's headers expect that glibc 2.28 lacks.

   glibc 2.32 added __libc_single_threaded, which libstdc++'s inline code reads to
   skip atomic reference counts in a single-threaded process. Ours is hidden and
   0: never assume single-threaded (always the atomic path, correct everywhere). */
__attribute__((visibility("hidden"))) char __libc_single_threaded = 0;
