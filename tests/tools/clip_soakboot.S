/* tests/tools/clip_soakboot.S — a 512-byte boot sector that keeps a VGA
 * screen busy, for t53-clip-soak (heavy, varied framebuffer traffic from a
 * real QEMU without a guest OS image).
 *
 *   as --32 -o boot.o clip_soakboot.S
 *   ld -m elf_i386 -Ttext 0x7c00 -e _start --oformat binary -o boot.img boot.o
 *   qemu-system-x86_64 ... -drive file=boot.img,format=raw,if=floppy
 *
 * Forever, every ~15 ms: writes a burst of pseudo-random data at a random
 * place, in text mode (80x25, random characters and colours, some blinking)
 * or in VGA mode 13h (320x200, 256 colours); every 64 bursts it switches
 * mode (so the VNC server resizes the desktop), and so does any key typed
 * into it (QMP send-key), except "q", which stops it: back to text mode, one
 * line of text, halt; the screen is then still, so a viewer can be compared
 * with QEMU's screendump. */
    .code16
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7c00, %sp
    sti
    mov $0xace1, %si            /* xorshift16 state */
    xor %bp, %bp                /* burst counter */

main:
    mov $0x01, %ah              /* a key waiting? */
    int $0x16
    jz 4f
    xor %ah, %ah                /* take it: "q" stops, any other key */
    int $0x16                   /* switches the mode now */
    cmp $'q', %al
    je stop
    or $63, %bp
    inc %bp
4:  test $63, %bp
    jnz draw
    test $64, %bp
    jz text
    mov $0x0013, %ax            /* 320x200x256 */
    int $0x10
    jmp draw
text:
    mov $0x0003, %ax            /* 80x25 text */
    int $0x10
draw:
    cmpb $0x13, 0x449           /* current video mode (BIOS data area) */
    je gfx
    mov $0xb800, %ax
    mov %ax, %es
    call rand
    and $0x0ffe, %ax            /* an even offset, < 4096 */
    mov %ax, %di
    mov $300, %cx
tloop:
    call rand
    stosw                       /* character, attribute */
    cmp $4000, %di
    jb 1f
    xor %di, %di
1:  loop tloop
    jmp pause
gfx:
    mov $0xa000, %ax
    mov %ax, %es
    call rand
    mov %ax, %di
    mov $3000, %cx
gloop:
    call rand
    stosw
    loop gloop
pause:
    mov $0x86, %ah              /* wait CX:DX microseconds */
    xor %cx, %cx
    mov $15000, %dx
    int $0x15
    inc %bp
    jmp main

stop:
    mov $0x0003, %ax
    int $0x10
    mov $msg, %si
2:  lodsb
    test %al, %al
    jz 3f
    mov $0x0e, %ah
    mov $0x0007, %bx
    int $0x10
    jmp 2b
3:  cli
    hlt
    jmp 3b

rand:                           /* ax = next xorshift16 (clobbers dx) */
    mov %si, %ax
    mov %ax, %dx
    shl $7, %dx
    xor %dx, %ax
    mov %ax, %dx
    shr $9, %dx
    xor %dx, %ax
    mov %ax, %dx
    shl $8, %dx
    xor %dx, %ax
    mov %ax, %si
    ret

msg:
    .asciz "vmgate clipboard soak: screen traffic stopped."

    .org 510
    .word 0xaa55
