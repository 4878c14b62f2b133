#include "firmware_info.h"

/* Symbols from firmware.ld */
extern const char __image_start[], __image_end[], __build_id_note[];

static const char version_string[] =
    FW_NAME " " FW_VERSION " (built " FW_BUILD_DATE ")";

/* aligned(16): at offset 0x10 exactly (gcc would otherwise align it to 32) */
__attribute__((section(".fwinfo"), aligned(16), used))
const struct firmware_info firmware_info = {
    .magic = FW_INFO_MAGIC,
    .info_size = sizeof(struct firmware_info),
    .version = { FW_VERSION_MAJOR, FW_VERSION_MINOR, FW_VERSION_PATCH },
    .build_epoch = FW_BUILD_EPOCH,
    .version_string = version_string,
    .image_start = __image_start,
    .image_end = __image_end,
    .build_id_note = __build_id_note,
};
