/* Start-up environment for the math libraries: they read it once, when they load, so a program sets it
 * and re-executes itself before doing any work (see avo_runtime_prefer_env in common.h). */
#include "autovoice/common.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

extern char *openblas_get_corename(void);

/* OpenBLAS 0.3.21 (Debian 12) does not know AMD Zen 4/5 and gives them its AVX2 Haswell or Zen kernels,
 * although these CPUs run its AVX-512 SkylakeX kernels (measured on a Zen 5: sgemm 100 -> 190 GFLOP/s
 * per core on 2048^3, 1.6-1.9x on the engine's convolution shapes). Only a CPU with every AVX-512 subset
 * those kernels use gets them; any other CPU keeps what OpenBLAS chose. */
static bool openblas_avx512_would_help(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl") ||
        !__builtin_cpu_supports("avx512cd"))
        return false;
    const char *core = openblas_get_corename();
    return core && (strcasecmp(core, "haswell") == 0 || strcasecmp(core, "zen") == 0);
#else
    return false;
#endif
}

bool avo_runtime_prefer_env(void) {
    bool changed = false;
    /* OpenMP threads that spin while idle take the cores OpenBLAS's own threads need (measured: GEMM
     * operators 10-30x slower). */
    if (!getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0) changed = true;
    if (!getenv("OPENBLAS_CORETYPE") && openblas_avx512_would_help() && setenv("OPENBLAS_CORETYPE", "SkylakeX", 1) == 0)
        changed = true;
    return changed;
}

void avo_runtime_reexec_with_preferred_env(char **argv) {
    if (avo_runtime_prefer_env()) execv("/proc/self/exe", argv); /* returns only on failure: go on as we are */
}
