#include "fl.h"

#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* SIGBUS / SIGSEGV guard. Per-thread jump state; the sigsetjmp lives in small noinline
 * functions so no caller locals are live across the jump (oracle.md §6.7). The handler is
 * installed with SA_NODEFER, so the jump does not need to restore the signal mask and
 * sigsetjmp(..., 0) avoids a sigprocmask syscall per access. */

static __thread sigjmp_buf g_jb;
static __thread volatile sig_atomic_t g_armed;
static __thread void *volatile g_addr;
static __thread volatile int g_sig;

static void handler(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  if (!g_armed) {
    /* a real crash outside a guarded access: restore the default action and re-raise */
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  g_armed = 0;
  g_addr = si->si_addr;
  g_sig = sig;
  siglongjmp(g_jb, 1);
}

void fl_guard_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, NULL);
  sigaction(SIGSEGV, &sa, NULL);
}

__attribute__((noinline)) int fl_guarded_read(void *dst, const void *src, size_t n, uintptr_t *fault) {
  if (sigsetjmp(g_jb, 0)) {
    *fault = (uintptr_t)g_addr;
    return g_sig;
  }
  g_armed = 1;
  const volatile uint64_t *s = (const volatile uint64_t *)src;
  uint64_t *d = dst;
  for (size_t i = 0; i < n / 8; i++) d[i] = s[i];
  g_armed = 0;
  return 0;
}

__attribute__((noinline)) int fl_guarded_write(void *dst, const void *src, size_t n, uintptr_t *fault) {
  if (sigsetjmp(g_jb, 0)) {
    *fault = (uintptr_t)g_addr;
    return g_sig;
  }
  g_armed = 1;
  volatile uint64_t *d = (volatile uint64_t *)dst;
  const uint64_t *s = src;
  for (size_t i = 0; i < n / 8; i++) d[i] = s[i]; /* ascending 8-byte stores (§6.4) */
  g_armed = 0;
  return 0;
}
