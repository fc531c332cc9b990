/* The two entry points libFuzzer calls (declared for -Wmissing-prototypes). */
#ifndef RB_FUZZ_H
#define RB_FUZZ_H
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
#endif
