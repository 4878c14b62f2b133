#include "firewall.h"

#define IP_TCP  6
#define IP_UDP 17

/* Factory firewall for traffic arriving on the WAN side. */
static const struct fw_rule wan_rules[] = {
    { 0x0A000000, 0xFF000000, 0,    65535, 0,      FW_DROP,   "drop-rfc1918-10" },
    { 0xAC100000, 0xFFF00000, 0,    65535, 0,      FW_DROP,   "drop-rfc1918-172" },
    { 0xC0A80000, 0xFFFF0000, 0,    65535, 0,      FW_DROP,   "drop-rfc1918-192" },
    { 0x00000000, 0x00000000, 22,   22,    IP_TCP, FW_DROP,   "drop-ssh" },
    { 0x00000000, 0x00000000, 23,   23,    IP_TCP, FW_DROP,   "drop-telnet" },
    { 0x00000000, 0x00000000, 68,   68,    IP_UDP, FW_ACCEPT, "dhcp-client" },
    { 0x00000000, 0x00000000, 1194, 1194,  IP_UDP, FW_ACCEPT, "openvpn" },
    { 0x00000000, 0x00000000, 0,    65535, 0,      FW_DROP,   "default-drop" },
};

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) { return (uint32_t)be16(p) << 16 | be16(p + 2); }

/* RFC 1071 Internet checksum; 0 when computed over a valid header. */
uint16_t ipv4_checksum(const void *hdr, size_t len)
{
    const uint8_t *p = hdr;
    uint32_t sum = 0;

    for (; len > 1; len -= 2, p += 2)
        sum += be16(p);
    if (len)
        sum += (uint32_t)p[0] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* Returns 0 and fills key for a well-formed IPv4 TCP/UDP packet, -1 otherwise. */
int ipv4_parse(const uint8_t *pkt, size_t len, struct packet_key *key)
{
    if (len < 20 || pkt[0] >> 4 != 4)
        return -1;
    size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
    if (ihl < 20 || len < ihl + 4 || be16(pkt + 2) > len)
        return -1;
    if (ipv4_checksum(pkt, ihl) != 0)
        return -1;
    key->proto = pkt[9];
    key->src = be32(pkt + 12);
    key->dst = be32(pkt + 16);
    key->sport = be16(pkt + ihl);
    key->dport = be16(pkt + ihl + 2);
    return 0;
}

const struct fw_rule *firewall_match(const struct packet_key *key)
{
    for (size_t i = 0; i < sizeof(wan_rules) / sizeof(wan_rules[0]); i++) {
        const struct fw_rule *r = &wan_rules[i];
        if ((key->src & r->src_mask) == r->src_net &&
            (r->proto == 0 || r->proto == key->proto) &&
            key->dport >= r->dport_lo && key->dport <= r->dport_hi)
            return r;
    }
    return NULL;                    /* unreachable: the last rule matches all */
}

/* Power-on self-test: a UDP datagram to the OpenVPN port must pass, the
   same one with a corrupted header must be rejected by the parser. */
int firewall_selftest(void)
{
    uint8_t pkt[28] = {
        0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00,  /* v4, len 28, DF */
        0x40, IP_UDP, 0x00, 0x00,                          /* ttl, proto, csum */
        198, 51, 100, 7,   203, 0, 113, 1,                 /* src, dst */
        0x9c, 0x40, 0x04, 0xaa, 0x00, 0x08, 0x00, 0x00,   /* 40000 -> 1194 */
    };
    struct packet_key key;
    uint16_t csum = ipv4_checksum(pkt, 20);

    pkt[10] = (uint8_t)(csum >> 8);
    pkt[11] = (uint8_t)csum;
    if (ipv4_parse(pkt, sizeof(pkt), &key) != 0)
        return 0;
    const struct fw_rule *r = firewall_match(&key);
    if (!r || r->action != FW_ACCEPT)
        return 0;
    pkt[8] ^= 0xff;                 /* corrupt the TTL: checksum must fail */
    return ipv4_parse(pkt, sizeof(pkt), &key) != 0;
}
