#ifndef UART_H
#define UART_H

#include <stdint.h>

/* A 16550-compatible UART, memory-mapped with byte-wide registers. */
struct uart {
    uintptr_t base;
    uint32_t clock_hz;
    uint32_t baud;
};

extern struct uart uart0;

void uart_init(const struct uart *u);
void uart_putc(const struct uart *u, char c);
void uart_puts(const struct uart *u, const char *s);
int  uart_getc(const struct uart *u);   /* -1 if nothing received */

#endif
