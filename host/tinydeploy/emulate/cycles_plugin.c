/* A QEMU TCG plugin (plugin API v1, QEMU 7.2) that estimates Cortex-M4 cycles over the emulated instruction stream.
 *
 * Method: every translated block's instructions are classified from their Thumb-2 encodings and given the cycle
 * counts of the Cortex-M4 Technical Reference Manual (ARM DDI 0439B, table 3-1 "Cortex-M4 instruction set summary"):
 * data processing, multiplies and multiply-accumulates (the DSP extension's too) 1; SDIV/UDIV 7 (the middle of 2-12);
 * LDR/STR 2, or 1 where they follow another load or store single (their address and data phases pipeline); LDRD/STRD
 * 3; LDM/STM/PUSH/POP 1 + registers; a taken branch 1 + P with P = 2 (the manual's refill takes 1-3), a conditional
 * branch not taken 1, POP/LDM/LDR of PC 1 + registers + P; VFP 1, VDIV/VSQRT 14, VLDR/VSTR 2, VLDM/VSTM 1 + registers.
 * A conditional branch ends its block in QEMU, so whether it was taken is known when the next block starts. Not
 * modelled: flash wait states and cache, bus contention, stalls between dependent instructions, interrupts' entry.
 * The figures are estimates, the instruction counts beside them exact.
 *
 * Arguments: mark=ADDRESS (hex: the firmware's counter function, whose every call is logged with the running
 * instruction and cycle totals) and out=PATH (the log: one "instructions cycles" line per call, flushed as it goes,
 * so that it is whole however QEMU ends); optionally profile=PATH: at exit, one "address instructions executions" line
 * per translated block that ran (bench/hotspots.py sums them per function).
 * The plugin API's declarations are written here (QEMU's qemu-plugin.h is not installed with Debian's QEMU); they
 * follow its version-1 ABI, which QEMU 7.2 loads. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* not read */
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
extern void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                                 enum qemu_plugin_cb_flags flags, void *userdata);
extern void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                                   enum qemu_plugin_cb_flags flags, void *userdata);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
extern const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
extern size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
extern uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

enum { kPipelineRefill = 2 }; /* P: the TRM's 1-3 */

/* What a block costs, fixed at translation. */
struct Block {
  uint64_t insns;
  uint64_t cycles;       /* the branch at its end counted as not taken */
  uint64_t end;          /* the address after its last instruction */
  bool conditional_end;  /* it ends with a conditional branch: + P when the next block is not at `end` */
};

static uint64_t g_insns, g_cycles;
static uint64_t g_pending_end; /* the last block's, when it ended with a conditional branch */
static bool g_pending;
static uint64_t g_mark;
static FILE *g_out;
static FILE *g_profile;

enum Class { kOther, kLoadStore, kTaken, kConditional };

static int popcount16(uint32_t x) { return __builtin_popcount(x & 0xffffu); }

/* The cycles of one instruction (hw1, hw2: its halfwords; size 2 or 4) and its class. */
static int Cost(uint32_t hw1, uint32_t hw2, size_t size, bool after_load_store, enum Class *cls) {
  *cls = kOther;
  const int ls = after_load_store ? 1 : 2;
  if (size == 2) {
    if ((hw1 & 0xf800) == 0x4800 || (hw1 & 0xf000) == 0x5000 || (hw1 & 0xe000) == 0x6000 ||
        (hw1 & 0xf000) == 0x8000 || (hw1 & 0xf000) == 0x9000) {
      *cls = kLoadStore;  /* LDR literal, register, immediate, halfword, SP-relative */
      return ls;
    }
    if ((hw1 & 0xfe00) == 0xb400) return 1 + popcount16(hw1 & 0x1ff);                         /* PUSH */
    if ((hw1 & 0xfe00) == 0xbc00) {                                                           /* POP */
      if (hw1 & 0x100) {
        *cls = kTaken;
        return 1 + popcount16(hw1 & 0x1ff) + kPipelineRefill;
      }
      return 1 + popcount16(hw1 & 0xff);
    }
    if ((hw1 & 0xf000) == 0xc000) return 1 + popcount16(hw1 & 0xff);                          /* LDM/STM */
    if ((hw1 & 0xf500) == 0xb100) {                                                           /* CBZ/CBNZ */
      *cls = kConditional;
      return 1;
    }
    if ((hw1 & 0xf000) == 0xd000 && (hw1 & 0x0e00) != 0x0e00) {                               /* B<cond> */
      *cls = kConditional;
      return 1;
    }
    if ((hw1 & 0xf800) == 0xe000 || (hw1 & 0xff00) == 0x4700) {                               /* B, BX/BLX */
      *cls = kTaken;
      return 1 + kPipelineRefill;
    }
    return 1;
  }
  if ((hw1 & 0xfe40) == 0xe800 && ((hw1 >> 7) & 3) != 0 && ((hw1 >> 7) & 3) != 3) {          /* LDM/STM.W */
    const bool load = hw1 & 0x10, pc = hw2 & 0x8000;
    if (load && pc) {
      *cls = kTaken;
      return 1 + popcount16(hw2) + kPipelineRefill;
    }
    return 1 + popcount16(hw2);
  }
  if ((hw1 & 0xfe40) == 0xe840 && (hw1 & 0x0120) != 0) return 3;                               /* LDRD/STRD */
  if ((hw1 & 0xfff0) == 0xe8d0 && (hw2 & 0xffe0) == 0xf000) {                                 /* TBB/TBH */
    *cls = kTaken;
    return 2 + kPipelineRefill;
  }
  if ((hw1 & 0xfe00) == 0xec00 && (hw2 & 0x0e00) == 0x0a00) { /* 1110 110P UDWL: VFP load/store, 64-bit moves */
    const int pre = (hw1 >> 8) & 1, wb = (hw1 >> 5) & 1;
    if ((hw1 & 0xffe0) == 0xec40) return 1;                                                   /* VMOV 2 regs */
    if (pre && !wb) return 2;                                                                 /* VLDR/VSTR */
    return 1 + (int)((hw2 & 0x100) ? (hw2 & 0xff) / 2 : (hw2 & 0xff));                         /* VLDM/VSTM */
  }
  if ((hw1 & 0xff00) == 0xee00 && (hw2 & 0x0e10) == 0x0a00) {                                 /* VFP data processing */
    if ((hw1 & 0x00b0) == 0x0080) return 14;                                                  /* VDIV */
    if ((hw1 & 0x00bf) == 0x00b1 && (hw2 & 0x00c0) == 0x00c0) return 14;                      /* VSQRT */
    return 1;
  }
  if ((hw1 & 0xf800) == 0xf000 && (hw2 & 0x8000)) {                                           /* branches, misc */
    if ((hw2 & 0xd000) == 0x9000 || (hw2 & 0xd000) == 0xd000) {                               /* B.W, BL */
      *cls = kTaken;
      return 1 + kPipelineRefill;
    }
    if ((hw2 & 0xd000) == 0x8000 && (hw1 & 0x0380) != 0x0380) {                               /* B<cond>.W */
      *cls = kConditional;
      return 1;
    }
    return 1;
  }
  if ((hw1 & 0xfe00) == 0xf800) {                                                             /* load/store single */
    const bool load = hw1 & 0x10;
    const uint32_t rt = (hw2 >> 12) & 0xf;
    if (load && rt == 0xf && (hw1 & 0x0060) == 0x0040) {                                      /* LDR PC */
      *cls = kTaken;
      return 2 + kPipelineRefill;
    }
    *cls = kLoadStore;
    return ls;
  }
  if ((hw1 & 0xffd0) == 0xfb90 && (hw2 & 0x00f0) == 0x00f0) return 7;                         /* SDIV/UDIV */
  return 1; /* data processing, multiplies (1 cycle on the Cortex-M4, the DSP extension's included) */
}

/* Blocks start at `start`; the previous block's end tells a taken conditional branch. */
struct BlockData {
  struct Block block;
  uint64_t start;
  uint64_t executions;      /* for the profile */
  struct BlockData *next;   /* every block translated, for the profile */
};

static struct BlockData *g_blocks;

static void OnBlockStart(unsigned int vcpu, void *udata) {
  (void)vcpu;
  const struct BlockData *d = (const struct BlockData *)udata;
  if (g_pending && d->start != g_pending_end) g_cycles += kPipelineRefill;
  g_insns += d->block.insns;
  g_cycles += d->block.cycles;
  g_pending = d->block.conditional_end;
  g_pending_end = d->block.end;
  ((struct BlockData *)udata)->executions++;
}

static void WriteProfile(qemu_plugin_id_t id, void *userdata) {
  (void)id;
  (void)userdata;
  if (!g_profile) return;
  for (const struct BlockData *d = g_blocks; d; d = d->next) {
    if (d->executions) fprintf(g_profile, "%" PRIx64 " %" PRIu64 " %" PRIu64 "\n", d->start, d->block.insns, d->executions);
  }
  fclose(g_profile);
  g_profile = NULL;
}

/* At the marked function's first instruction: the totals so far, without that block (its cost was added when it
 * started: subtract what precedes the mark in it, which is nothing when the mark starts its block). */
static void OnMark(unsigned int vcpu, void *udata) {
  (void)vcpu;
  const uint64_t *before = (const uint64_t *)udata; /* insns, cycles of the block from its start to the mark */
  const struct BlockData *d = (const struct BlockData *)(before + 2);
  if (!g_out) return;
  fprintf(g_out, "%" PRIu64 " %" PRIu64 "\n", g_insns - d->block.insns + before[0],
          g_cycles - d->block.cycles + before[1]);
  fflush(g_out);
}

static void OnTranslate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  const size_t n = qemu_plugin_tb_n_insns(tb);
  /* one allocation per block: the mark's prefix (2 words) and the block's data; kept for QEMU's lifetime */
  uint64_t *mem = (uint64_t *)calloc(1, 2 * sizeof(uint64_t) + sizeof(struct BlockData));
  if (!mem) abort();
  struct BlockData *d = (struct BlockData *)(mem + 2);
  bool after_ls = false;
  enum Class cls = kOther;
  for (size_t i = 0; i < n; ++i) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    const uint8_t *p = (const uint8_t *)qemu_plugin_insn_data(insn);
    const size_t size = qemu_plugin_insn_size(insn);
    const uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
    if (i == 0) d->start = vaddr;
    const uint32_t hw1 = p[0] | (uint32_t)p[1] << 8;
    const uint32_t hw2 = size == 4 ? (p[2] | (uint32_t)p[3] << 8) : 0;
    if (g_mark && vaddr == g_mark) {
      mem[0] = d->block.insns;
      mem[1] = d->block.cycles;
      qemu_plugin_register_vcpu_insn_exec_cb(insn, OnMark, QEMU_PLUGIN_CB_NO_REGS, mem);
    }
    d->block.cycles += (uint64_t)Cost(hw1, hw2, size, after_ls, &cls);
    d->block.insns += 1;
    after_ls = cls == kLoadStore;
    d->block.end = vaddr + size;
  }
  d->block.conditional_end = cls == kConditional;
  d->next = g_blocks;
  g_blocks = d;
  qemu_plugin_register_vcpu_tb_exec_cb(tb, OnBlockStart, QEMU_PLUGIN_CB_NO_REGS, d);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv) {
  (void)info;
  for (int i = 0; i < argc; ++i) {
    if (strncmp(argv[i], "mark=", 5) == 0) g_mark = strtoull(argv[i] + 5, NULL, 16) & ~1ull; /* Thumb bit off */
    if (strncmp(argv[i], "out=", 4) == 0) {
      g_out = fopen(argv[i] + 4, "w");
      if (!g_out) return 1;
    }
    if (strncmp(argv[i], "profile=", 8) == 0) {
      g_profile = fopen(argv[i] + 8, "w");
      if (!g_profile) return 1;
    }
  }
  qemu_plugin_register_atexit_cb(id, WriteProfile, NULL);
  qemu_plugin_register_vcpu_tb_trans_cb(id, OnTranslate);
  return 0;
}
