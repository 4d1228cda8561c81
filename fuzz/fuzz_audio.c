/* Fuzzes the audio decoders (WAV, FLAC, OGG, MP3 headers and data) through avo_audio_read_memory. */
#include "autovoice/audio.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    avo_audio a;
    avo_error err;
    if (avo_audio_read_memory(data, size, "fuzz", &a, &err) == AVO_OK) {
        /* Touch the decoded data so a bad length would be caught by ASan. */
        volatile float sink = avo_audio_peak(&a);
        (void)sink;
        avo_audio_free(&a);
    }
    return 0;
}
