/*
 * mkimage OUT ALIGN SUPERVISOR ROOTFS: the vendor's image format.
 *
 *   header (24 bytes, little-endian):
 *     0  magic "ACMEIMG1"
 *     8  total image length
 *    12  length of the supervisor
 *    16  offset of the root file system
 *    20  CRC-32 (IEEE) of everything after the header
 *   the supervisor (raw binary), 0xff fill up to a multiple of ALIGN,
 *   the root file system (a tar.gz).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *slurp(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) || (*len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
        exit(1);
    unsigned char *buf = malloc(*len ? *len : 1);
    if (!buf || fread(buf, 1, *len, f) != (size_t)*len)
        exit(1);
    fclose(f);
    return buf;
}

static unsigned int crc32(unsigned int crc, const unsigned char *p, long n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
    }
    return ~crc;
}

static void put32(unsigned char *p, unsigned int v)
{
    for (int i = 0; i < 4; i++)
        p[i] = v >> (8 * i);
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    long align = atol(argv[2]), slen, rlen;
    unsigned char *sup = slurp(argv[3], &slen), *root = slurp(argv[4], &rlen);
    if (align < 1)
        return 2;
    long roff = 24 + slen;
    roff = (roff + align - 1) / align * align;
    long total = roff + rlen;
    unsigned char *img = malloc(total);
    if (!img)
        return 1;
    memset(img, 0xff, total);
    memcpy(img, "ACMEIMG1", 8);
    memcpy(img + 24, sup, slen);
    memcpy(img + roff, root, rlen);
    put32(img + 8, total);
    put32(img + 12, slen);
    put32(img + 16, roff);
    put32(img + 20, crc32(0, img + 24, total - 24));
    FILE *out = fopen(argv[1], "wb");
    if (!out || fwrite(img, 1, total, out) != (size_t)total || fclose(out))
        return 1;
    return 0;
}
