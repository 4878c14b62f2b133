#ifndef LIB_H
#define LIB_H

#include <stddef.h>

/* GCC may emit calls to these even with -ffreestanding; src/lib.c has them. */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int   memcmp(const void *a, const void *b, size_t n);

#endif
