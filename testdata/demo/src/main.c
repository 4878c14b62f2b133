#include <stdint.h>

#include "config.h"
#include "crc32.h"
#include "firewall.h"
#include "firmware_info.h"
#include "printf.h"
#include "uart.h"

/* ELF note header, as the linker writes .note.gnu.build-id */
struct elf_note {
    uint32_t namesz, descsz, type;
    char name[4];                   /* "GNU\0" */
    uint8_t desc[];
};

static uint32_t boot_count;         /* .bss: zeroed by start.S */
static uint32_t config_crc;

static const char help[] =
    "commands:\n"
    "  v  version and build information\n"
    "  c  factory configuration\n"
    "  f  run the firewall self-test\n"
    "  b  boot counter\n"
    "  ?  this help\n";

static void print_banner(void)
{
    const struct firmware_info *fi = &firmware_info;
    const struct elf_note *note = fi->build_id_note;

    printk("%s\n", fi->version_string);
    printk("version %u.%u.%u, source date epoch %lu\n",
           fi->version[0], fi->version[1], fi->version[2],
           (unsigned long)fi->build_epoch);
    printk("build-id ");
    for (uint32_t i = 0; i < note->descsz; i++)
        printk("%02x", note->desc[i]);
    printk("\nimage %p..%p, config crc32 %08x\n",
           fi->image_start, fi->image_end, config_crc);
}

static void dump_config(void)
{
    for (size_t i = 0; i < default_config_len; i++)
        printk("%-16s = 0x%08x\n", default_config[i].key,
               default_config[i].value);
}

/* Power-on self-test of CRC-32: the standard check value. */
static int crc32_selftest(void)
{
    static const char check[] = "123456789";

    return crc32(check, sizeof(check) - 1) == 0xCBF43926u;
}

int main(void)
{
    uart_init(&uart0);
    boot_count++;

    crc32_init();
    if (!crc32_selftest() || !firewall_selftest()) {
        printk("PANIC: power-on self-test failed\n");
        return 1;                   /* start.S halts */
    }
    config_crc = crc32(default_config,
                       default_config_len * sizeof(default_config[0]));
    print_banner();
    printk("%s", help);

    for (;;) {                      /* the serial console */
        switch (uart_getc(&uart0)) {
        case 'v':
            print_banner();
            break;
        case 'c':
            dump_config();
            break;
        case 'f':
            printk("firewall self-test: %s\n",
                   firewall_selftest() ? "ok" : "FAILED");
            break;
        case 'b':
            printk("boots: %u\n", boot_count);
            break;
        case '?':
            printk("%s", help);
            break;
        default:
            break;
        }
    }
}
