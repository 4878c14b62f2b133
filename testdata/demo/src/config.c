#include "config.h"

const struct config_entry default_config[] = {
    { "lan.ipv4",       0xC0A80101 },   /* 192.168.1.1 */
    { "lan.netmask",    0xFFFFFF00 },
    { "lan.vlan",       1 },
    { "wan.mtu",        1500 },
    { "wan.dhcp",       1 },
    { "dhcp.pool.start", 100 },
    { "dhcp.pool.size", 150 },
    { "dns.cache",      512 },
    { "fw.watchdog.ms", 5000 },
    { "mgmt.ssh",       0 },
    { "mgmt.telnet",    0 },
};

const size_t default_config_len =
    sizeof(default_config) / sizeof(default_config[0]);
