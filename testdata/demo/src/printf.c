#include <stdint.h>

#include "printf.h"

struct out {
    const struct uart *u;
    int count;
};

static void emit(struct out *o, char c)
{
    uart_putc(o->u, c);
    o->count++;
}

static void emit_padding(struct out *o, unsigned width, unsigned len, char pad)
{
    while (width-- > len)
        emit(o, pad);
}

static void emit_string(struct out *o, const char *s, unsigned width, int left)
{
    unsigned len = 0;

    while (s[len])
        len++;
    if (!left)
        emit_padding(o, width, len, ' ');
    while (*s)
        emit(o, *s++);
    if (left)
        emit_padding(o, width, len, ' ');
}

static void emit_number(struct out *o, uint64_t v, unsigned base, int negative,
                        unsigned width, char pad)
{
    char buf[24];
    unsigned n = 0;

    if (negative && pad == '0') {   /* the sign goes before the zeros */
        emit(o, '-');
        width = width ? width - 1 : 0;
        negative = 0;
    }
    do {
        buf[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (negative)
        buf[n++] = '-';
    buf[n] = 0;
    /* digits were produced backwards: reverse them in place */
    for (unsigned i = 0; i < n / 2; i++) {
        char t = buf[i];
        buf[i] = buf[n - 1 - i];
        buf[n - 1 - i] = t;
    }
    if (pad == '0')
        emit_padding(o, width, n, '0');
    emit_string(o, buf, pad == '0' ? 0 : width, 0);
}

int uart_vprintf(const struct uart *u, const char *fmt, va_list ap)
{
    struct out o = { u, 0 };

    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            emit(&o, *fmt);
            continue;
        }
        char pad = ' ';
        unsigned width = 0;
        int is_long = 0, left = 0;

        for (fmt++; *fmt == '-' || *fmt == '0'; fmt++) {
            if (*fmt == '-')
                left = 1;
            else
                pad = '0';
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (unsigned)(*fmt++ - '0');
        while (*fmt == 'l')
            is_long = 1, fmt++;

        switch (*fmt) {
        case 's':
            emit_string(&o, va_arg(ap, const char *), width, left);
            break;
        case 'c':
            emit(&o, (char)va_arg(ap, int));
            break;
        case 'd': {
            int64_t v = is_long ? va_arg(ap, long) : va_arg(ap, int);
            emit_number(&o, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0,
                        width, pad);
            break;
        }
        case 'u':
        case 'x': {
            uint64_t v = is_long ? va_arg(ap, unsigned long)
                                 : va_arg(ap, unsigned int);
            emit_number(&o, v, *fmt == 'u' ? 10 : 16, 0, width, pad);
            break;
        }
        case 'p':
            emit(&o, '0');
            emit(&o, 'x');
            emit_number(&o, (uintptr_t)va_arg(ap, void *), 16, 0, 16, '0');
            break;
        case '%':
            emit(&o, '%');
            break;
        default:                    /* unknown conversion: show it as is */
            emit(&o, '%');
            if (!*fmt)
                return o.count;
            emit(&o, *fmt);
            break;
        }
    }
    return o.count;
}

int uart_printf(const struct uart *u, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = uart_vprintf(u, fmt, ap);
    va_end(ap);
    return n;
}
