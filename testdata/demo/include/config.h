#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* Factory-default settings, stored in flash and checksummed at boot. */
struct config_entry {
    char     key[16];
    uint32_t value;
};

extern const struct config_entry default_config[];
extern const size_t default_config_len;

#endif
