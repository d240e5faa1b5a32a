/* bench/redraw_boot.S — a 512-byte boot sector that redraws the screen at a
 * fixed rate and stamps every frame with the time it was drawn, for
 * bench/cu.sh (the age of what a viewer shows, read back from the pixels).
 *
 *   as --32 --defsym HZ=50 --defsym ROWS=198 -o boot.o redraw_boot.S
 *   ld -m elf_i386 -Ttext 0x7c00 -e _start --oformat binary -o boot.img boot.o
 *   qemu-system-x86_64 ... -drive file=boot.img,format=raw,if=floppy
 *
 * VGA mode 13h (320x200, 256 colours).  The PIT is set to HZ interrupts a
 * second; after each one (hlt) the guest repaints ROWS rows from row 2 down,
 * every row one colour that moves on by one each frame (so every pixel of
 * those rows changes: a large redraw with ROWS=198, a small change with a
 * few rows), then reads its TSC (TCG: the host's TSC plus a constant),
 * keeps it at 0x500 (8 bytes, for QMP `xp`, which calibrates guest time
 * against the host's clock) and draws it as 64 pixels in row 0 and again
 * in row 1: pixel i is colour 15 when bit i is set, else 0.  A viewer that
 * sees two equal rows has a whole stamp (a torn one differs). */
    .code16
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7c00, %sp
    mov $0x36, %al              /* PIT channel 0, mode 3, divisor below */
    out %al, $0x43
    mov $(1193182 / HZ), %ax
    out %al, $0x40
    mov %ah, %al
    out %al, $0x40
    sti
    mov $0x0013, %ax            /* 320x200x256 */
    int $0x10
    mov $0xa000, %ax
    mov %ax, %es
    xor %bx, %bx                /* frame number */

frame:
    hlt                         /* the next timer tick */
    inc %bx
    cld
    mov $640, %di               /* row 2 */
    mov $ROWS, %dx
row:
    mov %dx, %ax
    add %bl, %al                /* this row's colour this frame */
    mov $320, %cx
    rep stosb
    dec %dx
    jnz row

    rdtsc
    mov %eax, 0x500
    mov %edx, 0x504
    mov $0x500, %si
    xor %di, %di
byte:
    lodsb
    mov $8, %cx
bit:
    shr $1, %al
    sbb %ah, %ah                /* 0xff for a set bit */
    and $0x0f, %ah
    mov %ah, %es:(%di)
    inc %di
    loop bit
    cmp $0x508, %si
    jb byte
    mov $0x500, %si             /* the same stamp again in row 1 */
    mov $320, %di
byte2:
    lodsb
    mov $8, %cx
bit2:
    shr $1, %al
    sbb %ah, %ah
    and $0x0f, %ah
    mov %ah, %es:(%di)
    inc %di
    loop bit2
    cmp $0x508, %si
    jb byte2
    jmp frame

    .org 510
    .byte 0x55, 0xaa
