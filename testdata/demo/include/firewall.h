#ifndef FIREWALL_H
#define FIREWALL_H

#include <stddef.h>
#include <stdint.h>

enum fw_action { FW_DROP = 0, FW_ACCEPT = 1 };

/* The fields of an IPv4 packet that the filter looks at (host byte order). */
struct packet_key {
    uint32_t src, dst;
    uint16_t sport, dport;
    uint8_t  proto;
};

/* A rule matches when (addr & mask) == net, the protocol matches (0 = any)
   and the destination port is in [dport_lo, dport_hi]. First match wins. */
struct fw_rule {
    uint32_t src_net, src_mask;
    uint16_t dport_lo, dport_hi;
    uint8_t  proto;
    uint8_t  action;
    const char *name;
};

uint16_t ipv4_checksum(const void *hdr, size_t len);
int      ipv4_parse(const uint8_t *pkt, size_t len, struct packet_key *key);
const struct fw_rule *firewall_match(const struct packet_key *key);
int      firewall_selftest(void);

#endif
