// tinydeploy's int8 ADD of two tensors of the same shape, bit-exact with TFLM's reference kernel (AddFunc); other nodes
// (broadcasts, other types) run the pinned library's kernel, chosen in Prepare. The op data is TFLM's (AddPrepare).
//
// Where the build wrote the node's two tables (td_kernel_params.h's AddTables, analyze/add_tables.py: proven equal to
// TFLM's on all 65,536 pairs of values), an element is two byte loads, two table loads, an add, one SSAT (its shift
// the tables' fraction) and the store, and the op data is the tables' entry in flash (the arena keeps none).
//
// A node without them (where no exact tables fit an int32, e.g. an output scale hundreds of times finer than the
// inputs': 2 of 300 random quantizations; or where the project's were removed) is computed as TFLM does. TFLM scales
// each input separately, s_i(x) = RoundingDivideByPOT(SRDHM((x + offset_i) << left_shift, m_i), e_i), adds them and
// requantizes the sum. Each s_i takes only 256 values, so Eval first tabulates both (twice their value, by the same
// exact fast requantization, or TFLM's own function where its bound does not hold) in 2 KB of stack; an element is
// then two table loads and an add, and the sum's requantization in three instructions (td_kernel_util.h's
// RequantFast: SMMLAR, the sign, a shift). Where a bound does not allow that fast path, TFLM's function requantizes.
// Tensors of fewer than kMinTableElements elements, where those tables cost more than they save, run the pinned
// CMSIS-NN's arm_elementwise_add_s8 (the library kernel's call) on the same op data.
#include "td_dsp.h"
#include "td_kernel_params.h"
#include "td_kernel_util.h"
#include "td_kernels.h"
#include "tensorflow/lite/c/builtin_op_data.h"
#include "tensorflow/lite/kernels/internal/common.h"
#include "tensorflow/lite/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/add.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "third_party/cmsis_nn/Include/arm_nnfunctions.h"

namespace td {
namespace kernels {
namespace {

using AddOp = util::KernelOpOf<tflite::OpDataAdd>;

TfLiteRegistration Library() { return tflite::Register_ADD(); }

// The two tables cost about 15,000 instructions; an element then 12.6 against CMSIS-NN's 84 (bench/kernels.py on the
// study's MobileNetV2: 96-128 elements ran 0.51-0.65x the library's speed, 256 ran 1.14x, 512 2.0x).
constexpr int kMinTableElements = 256;

bool Applies(TfLiteContext* context, TfLiteNode* node) {
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* a = mc->AllocateTempInputTensor(node, tflite::kAddInputTensor1);
  TfLiteTensor* b = mc->AllocateTempInputTensor(node, tflite::kAddInputTensor2);
  TfLiteTensor* out = mc->AllocateTempOutputTensor(node, tflite::kAddOutputTensor);
  const bool ok = a != nullptr && b != nullptr && out != nullptr && a->type == kTfLiteInt8 &&
                  b->type == kTfLiteInt8 && out->type == kTfLiteInt8 && tflite::HaveSameShapes(a, b) &&
                  tflite::HaveSameShapes(a, out);
  if (a) mc->DeallocateTempTfLiteTensor(a);
  if (b) mc->DeallocateTempTfLiteTensor(b);
  if (out) mc->DeallocateTempTfLiteTensor(out);
  return ok;
}

// 2 x TFLM's scaled input for every int8 value, indexed by the value (the table's middle is value 0); returns the
// largest magnitude. TFLM's MultiplyByQuantizedMultiplierSmallerThanOneExp(x, m, e) is util::RequantFast of 2x where
// MakeRequant's bound allows it (|x| <= 255 << left_shift), TFLM's function elsewhere.
int32_t Tabulate(int32_t* middle, int32_t offset, int left_shift, int32_t mult, int shift) {
  const util::Requant q = util::MakeRequant(mult, shift, 0, 255LL << left_shift);
  int32_t most = 0;
  for (int v = -128; v < 128; ++v) {
    const int32_t x = (offset + v) * (1 << left_shift);
    const int32_t s = q.fast ? util::RequantFast(2 * x, q.mult, q.add, q.right)
                             : tflite::MultiplyByQuantizedMultiplierSmallerThanOneExp(x, mult, shift);
    middle[v] = 2 * s;
    const int32_t m = s < 0 ? -s : s;
    if (m > most) most = m;
  }
  return most;
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// Pairs of elements in assembly, every constant in a register: per element two sign-extending byte loads, two table
// loads, the add, three instructions of requantization, SSAT and the store; the loop's two per pair.
//   (a, b, out, pairs >= 1; stack: ta, tb, mult, add, right)
#define TD_ADD_ONE(a, b, t)                 \
  "ldrsb " a ", [r0], #1\n\t"                \
  "ldrsb " b ", [r1], #1\n\t"                \
  "ldr " a ", [r4, " a ", lsl #2]\n\t"       \
  "ldr " b ", [r5, " b ", lsl #2]\n\t"       \
  "add " a ", " a ", " b "\n\t"              \
  "smmlar " t ", " a ", r6, r7\n\t"          \
  "add " t ", " t ", " a ", asr #31\n\t"     \
  "asr " t ", " t ", r8\n\t"                 \
  "ssat " t ", #8, " t "\n\t"                \
  "strb " t ", [r2], #1\n\t"
__attribute__((naked, noinline)) void AddPairsFull(const int8_t*, const int8_t*, int8_t*, int, const int32_t*,
                                                   const int32_t*, int32_t, int32_t, int32_t) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "ldrd r4, r5, [sp, #36]\n\t"
      "ldrd r6, r7, [sp, #44]\n\t"
      "ldr r8, [sp, #52]\n\t"
      "1:\n\t" TD_ADD_ONE("r9", "r10", "r11") TD_ADD_ONE("r12", "lr", "r9")
      "subs r3, #1\n\t"
      "bne 1b\n\t"
      "pop {r4-r11, pc}");
}
#undef TD_ADD_ONE
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// Four elements a round with the flash tables, every constant in a register: per element two sign-extending byte
// loads, two table loads, the add, SSAT with the tables' shift, the store; the loop's two per four.
//   (a, b, out, quads >= 1; stack: table1's middle, table2's middle)
#define TD_ADD_TABLES_TWO(a0, b0, a1, b1)                         \
  "ldrsb " a0 ", [r0], #1\n\t"                                    \
  "ldrsb " b0 ", [r1], #1\n\t"                                    \
  "ldrsb " a1 ", [r0], #1\n\t"                                    \
  "ldrsb " b1 ", [r1], #1\n\t"                                    \
  "ldr " a0 ", [r4, " a0 ", lsl #2]\n\t"                          \
  "ldr " b0 ", [r5, " b0 ", lsl #2]\n\t"                          \
  "ldr " a1 ", [r4, " a1 ", lsl #2]\n\t"                          \
  "ldr " b1 ", [r5, " b1 ", lsl #2]\n\t"                          \
  "add " a0 ", " a0 ", " b0 "\n\t"                                \
  "add " a1 ", " a1 ", " b1 "\n\t"                                \
  "ssat " a0 ", #8, " a0 ", asr #16\n\t"                          \
  "ssat " a1 ", #8, " a1 ", asr #16\n\t"                          \
  "strb " a0 ", [r2], #1\n\t"                                     \
  "strb " a1 ", [r2], #1\n\t"
static_assert(kAddFractionBits == 16, "AddQuadsTables' SSAT shifts by 16");
__attribute__((naked, noinline)) void AddQuadsTables(const int8_t*, const int8_t*, int8_t*, int, const int32_t*,
                                                     const int32_t*) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "ldrd r4, r5, [sp, #36]\n\t"
      "1:\n\t" TD_ADD_TABLES_TWO("r6", "r7", "r8", "r9") TD_ADD_TABLES_TWO("r10", "r11", "r12", "lr")
      "subs r3, #1\n\t"
      "bne 1b\n\t"
      "pop {r4-r11, pc}");
}
#undef TD_ADD_TABLES_TWO
#endif

// The node's tables (middles: indexed by the value itself): (t1[a] + t2[b]) >> kAddFractionBits, clamped.
void AddTablesEval(const int8_t* a, const int8_t* b, int8_t* out, int n, const int32_t* t1, const int32_t* t2,
                   int32_t lo, int32_t hi) {
  int i = 0;
  if (lo <= -128 && hi >= 127) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    if (n >= 4) {
      AddQuadsTables(a, b, out, n / 4, t1, t2);
      i = n & ~3;
    }
#endif
    for (; i < n; ++i) out[i] = static_cast<int8_t>(dsp::ssat8((t1[a[i]] + t2[b[i]]) >> kAddFractionBits));
    return;
  }
  for (; i < n; ++i) out[i] = static_cast<int8_t>(util::Clamp((t1[a[i]] + t2[b[i]]) >> kAddFractionBits, lo, hi));
}

template <bool kFull>
__attribute__((noinline)) void AddFast(const int8_t* a, const int8_t* b, int8_t* out, int n, const int32_t* ta,
                                       const int32_t* tb, int32_t mult, int32_t add, int32_t right, int32_t lo,
                                       int32_t hi) {
  int i = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  if (kFull && n >= 2) {
    AddPairsFull(a, b, out, n / 2, ta, tb, mult, add, right);
    i = n & ~1;
  }
#endif
  for (; i < n; ++i) {
    const int32_t r = ta[a[i]] + tb[b[i]];
    const int32_t v = util::RequantFast(r, mult, add, right);
    out[i] = static_cast<int8_t>(kFull ? dsp::ssat8(v) : util::Clamp(v, lo, hi));
  }
}

TfLiteStatus EvalOurs(TfLiteContext* context, TfLiteNode* node, const AddOp& op) {
  const TfLiteEvalTensor* a = tflite::micro::GetEvalInput(context, node, tflite::kAddInputTensor1);
  const TfLiteEvalTensor* b = tflite::micro::GetEvalInput(context, node, tflite::kAddInputTensor2);
  TfLiteEvalTensor* out = tflite::micro::GetEvalOutput(context, node, tflite::kAddOutputTensor);
  const tflite::OpDataAdd& d = op.data;
  int n = 1;
  for (int i = 0; i < out->dims->size; ++i) n *= out->dims->data[i];
  if (const AddTables* t = FindAddTables(node)) {
    AddTablesEval(tflite::micro::GetTensorData<int8_t>(a), tflite::micro::GetTensorData<int8_t>(b),
                  tflite::micro::GetTensorData<int8_t>(out), n, t->table1 + 128, t->table2 + 128,
                  d.output_activation_min, d.output_activation_max);
    return kTfLiteOk;
  }
  if (n < kMinTableElements) {
    return arm_elementwise_add_s8(tflite::micro::GetTensorData<int8_t>(a), tflite::micro::GetTensorData<int8_t>(b),
                                  d.input1_offset, d.input1_multiplier, d.input1_shift, d.input2_offset,
                                  d.input2_multiplier, d.input2_shift, d.left_shift,
                                  tflite::micro::GetTensorData<int8_t>(out), d.output_offset, d.output_multiplier,
                                  d.output_shift, d.output_activation_min, d.output_activation_max,
                                  n) == ARM_CMSIS_NN_SUCCESS
               ? kTfLiteOk
               : kTfLiteError;
  }
  int32_t table_a[256], table_b[256];
  int32_t* const ta = table_a + 128;
  int32_t* const tb = table_b + 128;
  const int32_t bound = Tabulate(ta, d.input1_offset, d.left_shift, d.input1_multiplier, d.input1_shift) +
                        Tabulate(tb, d.input2_offset, d.left_shift, d.input2_multiplier, d.input2_shift);
  const int8_t* pa = tflite::micro::GetTensorData<int8_t>(a);
  const int8_t* pb = tflite::micro::GetTensorData<int8_t>(b);
  int8_t* po = tflite::micro::GetTensorData<int8_t>(out);
  const int32_t lo = d.output_activation_min, hi = d.output_activation_max;
  const util::Requant q = util::MakeRequant(d.output_multiplier, d.output_shift, d.output_offset, bound);
  if (q.fast) {
    // MakeRequant's add holds 2^(e-1) + (zp << e): the SMMLAR's addend
    if (lo <= -128 && hi >= 127) {
      AddFast<true>(pa, pb, po, n, ta, tb, q.mult, q.add, q.right, lo, hi);
    } else {
      AddFast<false>(pa, pb, po, n, ta, tb, q.mult, q.add, q.right, lo, hi);
    }
    return kTfLiteOk;
  }
  for (int i = 0; i < n; ++i) {
    const int32_t raw = (ta[pa[i]] + tb[pb[i]]) / 2;
    const int32_t v = tflite::MultiplyByQuantizedMultiplierSmallerThanOneExp(raw, d.output_multiplier,
                                                                              d.output_shift) + d.output_offset;
    po[i] = static_cast<int8_t>(util::Clamp(v, lo, hi));
  }
  return kTfLiteOk;
}

}  // namespace

TfLiteRegistration Register_ADD() {
  return util::Kernel<tflite::OpDataAdd, Library, Applies, tflite::AddPrepare, EvalOurs,
                      AddOpDataInFlash>::Registration();
}

TfLiteRegistration Register_ADD_INT8() {
  return util::Kernel<tflite::OpDataAdd, nullptr, Applies, tflite::AddPrepare, EvalOurs,
                      AddOpDataInFlash>::Registration();
}

}  // namespace kernels
}  // namespace td
