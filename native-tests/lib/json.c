#include "fl.h"

#include <math.h>
#include <string.h>

void fl_json_init(fl_json *j, FILE *f) {
  memset(j, 0, sizeof *j);
  j->f = f;
  j->first[0] = 1;
}

static void sep(fl_json *j) {
  if (j->after_key) {
    j->after_key = 0;
    return;
  }
  if (!j->first[j->depth]) fputc(',', j->f);
  j->first[j->depth] = 0;
}

static void open_(fl_json *j, char c) {
  sep(j);
  fputc(c, j->f);
  if (j->depth < 63) j->depth++;
  j->first[j->depth] = 1;
}

static void close_(fl_json *j, char c) {
  if (j->depth > 0) j->depth--;
  fputc(c, j->f);
}

void fl_json_obj(fl_json *j) { open_(j, '{'); }
void fl_json_end_obj(fl_json *j) { close_(j, '}'); }
void fl_json_arr(fl_json *j) { open_(j, '['); }
void fl_json_end_arr(fl_json *j) { close_(j, ']'); }

static void raw_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
      case '"': fputs("\\\"", f); break;
      case '\\': fputs("\\\\", f); break;
      case '\n': fputs("\\n", f); break;
      case '\r': fputs("\\r", f); break;
      case '\t': fputs("\\t", f); break;
      default:
        if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
  }
  fputc('"', f);
}

void fl_json_key(fl_json *j, const char *k) {
  sep(j);
  raw_str(j->f, k);
  fputc(':', j->f);
  j->after_key = 1;
}
void fl_json_str(fl_json *j, const char *s) {
  sep(j);
  if (!s) fputs("null", j->f);
  else raw_str(j->f, s);
}
void fl_json_u64(fl_json *j, uint64_t v) {
  sep(j);
  fprintf(j->f, "%llu", (unsigned long long)v);
}
void fl_json_i64(fl_json *j, int64_t v) {
  sep(j);
  fprintf(j->f, "%lld", (long long)v);
}
void fl_json_dbl(fl_json *j, double v) {
  sep(j);
  if (!isfinite(v)) fputs("null", j->f);
  else fprintf(j->f, "%.6g", v);
}
void fl_json_bool(fl_json *j, int v) {
  sep(j);
  fputs(v ? "true" : "false", j->f);
}
void fl_json_null(fl_json *j) {
  sep(j);
  fputs("null", j->f);
}
void fl_json_kstr(fl_json *j, const char *k, const char *s) { fl_json_key(j, k); fl_json_str(j, s); }
void fl_json_ku64(fl_json *j, const char *k, uint64_t v) { fl_json_key(j, k); fl_json_u64(j, v); }
void fl_json_ki64(fl_json *j, const char *k, int64_t v) { fl_json_key(j, k); fl_json_i64(j, v); }
void fl_json_kdbl(fl_json *j, const char *k, double v) { fl_json_key(j, k); fl_json_dbl(j, v); }
void fl_json_kbool(fl_json *j, const char *k, int v) { fl_json_key(j, k); fl_json_bool(j, v); }
