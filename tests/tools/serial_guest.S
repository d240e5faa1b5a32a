# tests/tools/serial_guest.S: a boot sector that prints a banner on COM1
# and echoes every byte it receives there, except '!', which makes it print
# the banner 16384 times (512 KiB, as fast as QEMU takes it) then
# "BURST-END\r\n" (the slow-reader test).
    .code16
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7c00, %sp
    mov $0x3f9, %dx          # IER: no interrupts
    xor %al, %al
    out %al, %dx
    mov $0x3fb, %dx          # LCR: DLAB
    mov $0x80, %al
    out %al, %dx
    mov $0x3f8, %dx          # divisor 1: 115200
    mov $1, %al
    out %al, %dx
    mov $0x3f9, %dx
    xor %al, %al
    out %al, %dx
    mov $0x3fb, %dx          # 8N1
    mov $3, %al
    out %al, %dx
    mov $0x3fc, %dx          # DTR RTS
    mov $3, %al
    out %al, %dx
    mov $banner, %si
1:  lodsb
    test %al, %al
    jz echo
    call putc
    jmp 1b
echo:
    mov $0x3fd, %dx          # LSR: data ready?
2:  in %dx, %al
    test $1, %al
    jz 2b
    mov $0x3f8, %dx
    in %dx, %al
    cmp $'!', %al
    je burst
    call putc
    jmp echo
burst:
    mov $16384, %cx
4:  push %cx
    mov $banner, %si
    call puts
    pop %cx
    loop 4b
    mov $burstend, %si
    call puts
    jmp echo
puts:                        # the NUL-terminated string at %si
    lodsb
    test %al, %al
    jz 5f
    call putc
    jmp puts
5:  ret
putc:                        # %al out on COM1 once the transmitter is empty
    push %ax
    mov $0x3fd, %dx
3:  in %dx, %al
    test $0x20, %al
    jz 3b
    pop %ax
    mov $0x3f8, %dx
    out %al, %dx
    ret
banner:
    .asciz "VMGATE-SERIAL-BANNER: guest up\r\n"
burstend:
    .asciz "BURST-END\r\n"
    .org 510
    .word 0xaa55
