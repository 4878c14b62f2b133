/*
 * Reset vector and C runtime start-up: set up the stack, copy .data from
 * flash to RAM, zero .bss, call main, and halt if it ever returns.
 */
    .section .vectors, "ax"
    .globl  _reset
_reset:
    jmp     _start              /* the boot ROM jumps to the start of flash */
    .balign 16, 0xcc            /* firmware_info follows at offset 0x10 */

    .section .text.start, "ax"
    .globl  _start
    .type   _start, @function
_start:
    cli
    cld
    lea     __stack_top(%rip), %rsp     /* 16-byte aligned (firmware.ld) */
    xor     %ebp, %ebp

    /* .data: initial values live in flash at __data_load */
    lea     __data_load(%rip), %rsi
    lea     __data_start(%rip), %rdi
    lea     __data_end(%rip), %rcx
    sub     %rdi, %rcx
    rep movsb

    /* .bss: zero-filled */
    lea     __bss_start(%rip), %rdi
    lea     __bss_end(%rip), %rcx
    sub     %rdi, %rcx
    xor     %eax, %eax
    rep stosb

    call    main
1:  hlt
    jmp     1b
    .size   _start, . - _start

    .section .note.GNU-stack, "", @progbits
