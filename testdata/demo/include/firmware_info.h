#ifndef FIRMWARE_INFO_H
#define FIRMWARE_INFO_H

#include <stdint.h>

/* Stamped by the Makefile; refuse to build without them. */
#if !defined(FW_NAME) || !defined(FW_VERSION) || !defined(FW_BUILD_DATE) || \
    !defined(FW_BUILD_EPOCH)
#error "build with the Makefile: FW_NAME, FW_VERSION, FW_BUILD_* are not set"
#endif

#define FW_INFO_MAGIC 0x57464341u /* "ACFW" in little-endian */

/*
 * Image descriptor at offset 0x10 of firmware.img, right after the reset
 * vector, so that the boot ROM and update tools can find it without an ELF.
 * Pointers are load (flash) addresses.
 */
struct firmware_info {
    uint32_t magic;
    uint16_t info_size;             /* sizeof(struct firmware_info) */
    uint8_t  version[3];            /* major, minor, patch */
    uint8_t  reserved;
    uint64_t build_epoch;           /* SOURCE_DATE_EPOCH, never the clock */
    const char *version_string;
    const void *image_start;
    const void *image_end;          /* end of the flash image */
    const void *build_id_note;      /* ELF note with the GNU build-id */
};

extern const struct firmware_info firmware_info;

#endif
