/* MPS2 AN386 (Cortex-M4) under QEMU: where things are.  A board that
 * differs only in addresses (boards/mps2-an500) has its own board.h and
 * shares the rest of this folder. */
#ifndef SATCHEL_BOARD_H
#define SATCHEL_BOARD_H

#define BOARD_NAME "mps2-an386"
#define BOARD_UART0_BASE 0x40004000u  /* CMSDK APB UART */
#define BOARD_UART0_RX_IRQ 0
#define BOARD_LAN9118_BASE 0x40200000u
#define BOARD_LAN9118_IRQ 13
#define BOARD_PSRAM_BASE 0x21000000u  /* 16 MiB: the LMDB map */
#define BOARD_PSRAM_SIZE (16u * 1024u * 1024u)
#define BOARD_CPU_HZ 25000000u        /* SysTick clock */
#define BOARD_FREE_RUN_HZ 25000000u   /* LAN9118 FREE_RUN counter */

#endif
