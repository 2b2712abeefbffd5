#include "fl.h"

#include <string.h>

/* Header (FL_HDR = 20 bytes): "FLT!" magic, 4 run-id bytes, 4 base-255 digits of the unit index,
 * 8 base-255 digits of the generation; each digit is stored +1, so no header byte is zero.
 * The rest: a splitmix64 stream keyed by (run, u, g), zero bytes replaced by 0xA5. */

static inline uint8_t nz(uint8_t b) { return b ? b : 0xA5; }

static void run_bytes(uint32_t run, uint8_t out[4]) {
  for (int i = 0; i < 4; i++) out[i] = nz((uint8_t)(run >> (8 * i)));
}

void fl_pattern_fill(uint8_t *buf, uint32_t usz, uint32_t run, uint64_t u, uint64_t g) {
  buf[0] = 'F';
  buf[1] = 'L';
  buf[2] = 'T';
  buf[3] = '!';
  run_bytes(run, buf + 4);
  uint64_t x = u;
  for (int i = 0; i < 4; i++) {
    buf[8 + i] = (uint8_t)(x % 255 + 1);
    x /= 255;
  }
  x = g;
  for (int i = 0; i < 8; i++) {
    buf[12 + i] = (uint8_t)(x % 255 + 1);
    x /= 255;
  }
  uint64_t st = ((uint64_t)run << 32) ^ (u * 0x9e3779b97f4a7c15ull) ^ (g * 0xc2b2ae3d27d4eb4full);
  uint32_t k = FL_HDR;
  /* FL_HDR is not 8-aligned: fill 4 bytes, then 8 at a time */
  uint64_t v = fl_splitmix64(&st);
  for (; k < 24 && k < usz; k++) buf[k] = nz((uint8_t)(v >> (8 * (k - FL_HDR))));
  for (; k + 8 <= usz; k += 8) {
    v = fl_splitmix64(&st);
    for (int i = 0; i < 8; i++) buf[k + i] = nz((uint8_t)(v >> (8 * i)));
  }
  if (k < usz) {
    v = fl_splitmix64(&st);
    for (int i = 0; k < usz; k++, i++) buf[k] = nz((uint8_t)(v >> (8 * i)));
  }
}

int fl_pattern_decode(const uint8_t *buf, uint32_t len, uint32_t run, uint64_t *u, uint64_t *g) {
  if (len < FL_HDR) return 0;
  if (buf[0] != 'F' || buf[1] != 'L' || buf[2] != 'T' || buf[3] != '!') return 0;
  uint8_t rb[4];
  run_bytes(run, rb);
  if (memcmp(buf + 4, rb, 4) != 0) return 0;
  uint64_t x = 0;
  for (int i = 3; i >= 0; i--) {
    if (buf[8 + i] == 0) return 0;
    x = x * 255 + (uint64_t)(buf[8 + i] - 1);
  }
  *u = x;
  x = 0;
  for (int i = 7; i >= 0; i--) {
    if (buf[12 + i] == 0) return 0;
    x = x * 255 + (uint64_t)(buf[12 + i] - 1);
  }
  *g = x;
  return 1;
}

int fl_all_zero(const uint8_t *b, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    memcpy(&v, b + i, 8);
    if (v) return 0;
  }
  for (; i < n; i++)
    if (b[i]) return 0;
  return 1;
}
