/* avo_runtime_prefer_env: sets what the user left unset, never overrides what they set, and only gives
 * OpenBLAS AVX-512 kernels to a CPU that has every AVX-512 subset they use. */
#include "autovoice/common.h"
#include "../test_util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char *openblas_get_corename(void);

int main(void) {
    /* The user's own settings stay. */
    setenv("OMP_WAIT_POLICY", "ACTIVE", 1);
    setenv("OPENBLAS_CORETYPE", "Prescott", 1);
    CHECK(!avo_runtime_prefer_env());
    CHECK(strcmp(getenv("OMP_WAIT_POLICY"), "ACTIVE") == 0);
    CHECK(strcmp(getenv("OPENBLAS_CORETYPE"), "Prescott") == 0);

    /* Unset: the wait policy is always set; the core type only on a full AVX-512 CPU that this
     * process's OpenBLAS gave AVX2 kernels. */
    unsetenv("OMP_WAIT_POLICY");
    unsetenv("OPENBLAS_CORETYPE");
    CHECK(avo_runtime_prefer_env());
    CHECK(getenv("OMP_WAIT_POLICY") && strcmp(getenv("OMP_WAIT_POLICY"), "PASSIVE") == 0);
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                  __builtin_cpu_supports("avx512cd");
    const char *core = openblas_get_corename();
    bool avx2_core = core && (!strcasecmp(core, "haswell") || !strcasecmp(core, "zen"));
    const char *set = getenv("OPENBLAS_CORETYPE");
    CHECK_MSG((set != NULL) == (avx512 && avx2_core), "core %s, avx512 %d, set %s", core ? core : "?", avx512,
              set ? set : "(unset)");
    if (set) CHECK(strcmp(set, "SkylakeX") == 0);
    printf("openblas core %s, avx512 %d -> OPENBLAS_CORETYPE %s\n", core ? core : "?", avx512, set ? set : "(unset)");

    /* Second call: nothing left to set, so no second re-execution. */
    CHECK(!avo_runtime_prefer_env());
    TEST_MAIN_END();
}
