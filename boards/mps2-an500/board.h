/* MPS2 AN500 (Cortex-M7) under QEMU: the same peripherals as the AN386,
 * at other addresses.  Everything else comes from boards/mps2-an386. */
#ifndef SATCHEL_BOARD_H
#define SATCHEL_BOARD_H

#define BOARD_NAME "mps2-an500"
#define BOARD_UART0_BASE 0x40004000u
#define BOARD_UART0_RX_IRQ 0
#define BOARD_LAN9118_BASE 0xA0000000u
#define BOARD_LAN9118_IRQ 13
#define BOARD_PSRAM_BASE 0x60000000u
#define BOARD_PSRAM_SIZE (16u * 1024u * 1024u)
#define BOARD_CPU_HZ 25000000u
#define BOARD_FREE_RUN_HZ 25000000u

#endif
