/* Reset, vector table and interrupt handlers for the MPS2 boards.  Handlers
 * do the least they can: they mask their source so that the WFI in the idle
 * loop returns, and the main loop does the work. */
#include <stdint.h>
#include <string.h>

#include <board.h>
#include "board_hw.h"

extern uint32_t __etext, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack_bottom, __stack_top;
extern void __libc_init_array(void);
int main(void);
void reset_handler(void);

#define NVIC_ISER ((volatile uint32_t *)0xE000E100u)
#define NVIC_ICER ((volatile uint32_t *)0xE000E180u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)

void board_irq_enable(int irq)
{
    NVIC_ISER[irq / 32] = 1u << (irq % 32);
}

void board_irq_disable(int irq)
{
    NVIC_ICER[irq / 32] = 1u << (irq % 32);
}

static void put_hex(uint32_t v)
{
    static const char hex[] = "0123456789abcdef";
    int i;
    for (i = 28; i >= 0; i -= 4)
        uart_putc(hex[(v >> i) & 15]);
}

static void fault(const char *what, const uint32_t *frame)
{
    const char *p;
    for (p = what; *p; p++)
        uart_putc(*p);
    uart_putc(' ');
    uart_putc('p');
    uart_putc('c');
    uart_putc('=');
    put_hex(frame[6]);
    uart_putc(' ');
    put_hex(SCB_CFSR);
    uart_putc(' ');
    put_hex(SCB_HFSR);
    uart_putc(' ');
    put_hex(SCB_BFAR);
    uart_putc('\r');
    uart_putc('\n');
    for (;;)
        __asm__ volatile("wfi");
}

void hardfault_c(const uint32_t *frame);
void hardfault_c(const uint32_t *frame)
{
    fault("fault: hard fault", frame);
}

__attribute__((naked)) static void hardfault_handler(void)
{
    __asm__ volatile("tst lr, #4\n"
                     "ite eq\n"
                     "mrseq r0, msp\n"
                     "mrsne r0, psp\n"
                     "b hardfault_c\n");
}

static void default_handler(void)
{
    static const uint32_t none[8];
    fault("fault: unexpected interrupt", none);
}

static void uart0_rx_handler(void)
{
    uart_irq_ack();
}

static void lan9118_handler(void)
{
    /* The RX status level interrupt stays asserted until the FIFO is
     * drained: mask it; the idle loop unmasks it before sleeping. */
    board_irq_disable(BOARD_LAN9118_IRQ);
}

static void systick_handler(void)
{
    /* Keep the 32-bit FREE_RUN counter's wraps counted even when idle. */
    (void)board_now_us();
}

typedef void (*vector)(void);

__attribute__((section(".vectors"), used)) static const vector vectors[16 + 32] = {
    (vector)(uintptr_t)&__stack_top, reset_handler, default_handler, hardfault_handler,
    default_handler, default_handler, default_handler, 0, 0, 0, 0,
    default_handler, default_handler, 0, default_handler, systick_handler,
    [16 + BOARD_UART0_RX_IRQ] = uart0_rx_handler,
    [16 + BOARD_LAN9118_IRQ] = lan9118_handler,
};

uint32_t board_stack_high_water(void)
{
    const uint32_t *p = &__stack_bottom;
    while (p < &__stack_top && *p == 0x5a5a5a5au)
        p++;
    return (uint32_t)((const uint8_t *)&__stack_top - (const uint8_t *)p);
}

void reset_handler(void)
{
    uint32_t *src = &__etext, *dst;
    uint32_t sp;
    for (dst = &__data_start__; dst < &__data_end__;)
        *dst++ = *src++;
    for (dst = &__bss_start__; dst < &__bss_end__;)
        *dst++ = 0;
    /* Paint the stack below the current frame for the high-water mark. */
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (dst = &__stack_bottom; (uint32_t)dst < sp - 64; dst++)
        *dst = 0x5a5a5a5au;
#if defined(__ARM_FP)
    SCB_CPACR |= 0xFu << 20; /* CP10, CP11: the FPU */
    __asm__ volatile("dsb\nisb");
#endif
    __libc_init_array();
    main();
    for (;;)
        __asm__ volatile("wfi");
}
