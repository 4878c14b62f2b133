#include "uart.h"

/* 16550 register offsets and bits */
#define UART_RBR 0  /* receive buffer (read) */
#define UART_THR 0  /* transmit holding (write) */
#define UART_DLL 0  /* divisor latch low (DLAB=1) */
#define UART_DLM 1  /* divisor latch high (DLAB=1) */
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5

#define LCR_8N1  0x03
#define LCR_DLAB 0x80
#define FCR_ENABLE_CLEAR 0x07
#define MCR_DTR_RTS 0x03
#define LSR_DR   0x01   /* data ready */
#define LSR_THRE 0x20   /* transmit holding register empty */

/* Initialised data: lives in .data, copied from flash by start.S. */
struct uart uart0 = {
    .base = 0x10000000,
    .clock_hz = 1843200,
    .baud = 115200,
};

static inline void reg_write(const struct uart *u, unsigned reg, uint8_t v)
{
    *(volatile uint8_t *)(u->base + reg) = v;
}

static inline uint8_t reg_read(const struct uart *u, unsigned reg)
{
    return *(volatile uint8_t *)(u->base + reg);
}

void uart_init(const struct uart *u)
{
    uint32_t divisor = u->clock_hz / (16 * u->baud);

    reg_write(u, UART_IER, 0);              /* polled: no interrupts */
    reg_write(u, UART_LCR, LCR_DLAB);
    reg_write(u, UART_DLL, divisor & 0xff);
    reg_write(u, UART_DLM, (divisor >> 8) & 0xff);
    reg_write(u, UART_LCR, LCR_8N1);
    reg_write(u, UART_FCR, FCR_ENABLE_CLEAR);
    reg_write(u, UART_MCR, MCR_DTR_RTS);
}

void uart_putc(const struct uart *u, char c)
{
    if (c == '\n')
        uart_putc(u, '\r');
    while (!(reg_read(u, UART_LSR) & LSR_THRE))
        ;
    reg_write(u, UART_THR, (uint8_t)c);
}

void uart_puts(const struct uart *u, const char *s)
{
    while (*s)
        uart_putc(u, *s++);
}

int uart_getc(const struct uart *u)
{
    if (!(reg_read(u, UART_LSR) & LSR_DR))
        return -1;
    return reg_read(u, UART_RBR);
}
