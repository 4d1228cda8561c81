/* Fuzzes the stored voice-analysis reader (a profile's analysis.bin). */
#include "autovoice/convert.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    avo_voice_analysis *a = NULL;
    if (avo_voice_analysis_load(data, size, &a, NULL) == AVO_OK) {
        avo_voice_summary s;
        avo_voice_analysis_summary(a, &s);
        void *back = NULL;
        size_t n = 0;
        if (avo_voice_analysis_save(a, &back, &n, NULL) == AVO_OK && n != size) __builtin_trap();
        free(back);
        avo_voice_analysis_free(a);
    }
    return 0;
}
