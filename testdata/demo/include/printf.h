#ifndef PRINTF_H
#define PRINTF_H

#include <stdarg.h>

#include "uart.h"

/*
 * A small printf for the console: %s %c %d %u %x %p %%, with the '-' (strings)
 * and '0' (numbers) flags, a width (%-16s, %08x) and the 'l' modifier.
 */
int uart_vprintf(const struct uart *u, const char *fmt, va_list ap);
int uart_printf(const struct uart *u, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define printk(...) uart_printf(&uart0, __VA_ARGS__)

#endif
