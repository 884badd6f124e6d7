/* tests/fuzz/fuzz.h: what the libFuzzer targets share (fuzz.c).
 *
 * ptcc reads its inputs from files (the trace streamed through stdio, read again with pread for
 * diagnostics; the weights file mapped), so each input is written to a file in a private
 * temporary directory, made once per process and removed at exit.  A compilation's state lives
 * in its Ctx (ctx_init/ctx_free per input); the only state kept across inputs is ops.c's lookup
 * cache, which holds no input's data.  The core exits (status 2) only when malloc or mmap fails;
 * under the fuzzer an allocation over -rss_limit_mb (-malloc_limit_mb) is reported as an OOM
 * first, and an exit would be reported as a crash ("fuzz target exited"), never skipped.  (No
 * ptcc.h here: fuzz.c uses <dirent.h>, whose DT_UNKNOWN ptcc.h's dtypes also define.)
 */
#ifndef PTCC_FUZZ_H
#define PTCC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The directory, made on first use: /tmp/ptcc-fuzz.XXXXXX (or under $TMPDIR). */
const char *fuzz_dir(void);
/* dir/name, in a static buffer per slot (0..3). */
const char *fuzz_path(int slot, const char *name);
/* Write size bytes to path, replacing it; aborts on an I/O error (a harness fault, not a
 * finding). */
void fuzz_write(const char *path, const uint8_t *data, size_t size);
/* A symbolic link in the directory to every file of `from` (but dot files). */
void fuzz_link_dir(const char *from);
/* /dev/null opened for writing, for the emitters' output. */
FILE *fuzz_null(void);

/* libFuzzer's entry points, which each target defines. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
