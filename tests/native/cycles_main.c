/* The cycle-estimate plugin's cost model (host/tinydeploy/emulate/cycles_plugin.c) on a stream of Thumb-2
 * instructions read from stdin (the raw .text of an assembled file): one line per instruction, "size cycles", with
 * the plugin's pipelining rule for back-to-back loads and stores. The plugin API's functions are stubs here. */
#include <stdio.h>

#include "../../host/tinydeploy/emulate/cycles_plugin.c"

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb) { (void)id; (void)cb; }
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata) {
  (void)tb; (void)cb; (void)flags; (void)userdata;
}
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata) {
  (void)insn; (void)cb; (void)flags; (void)userdata;
}
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb) { (void)tb; return 0; }
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx) { (void)tb; (void)idx; return NULL; }
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn) { (void)insn; return NULL; }
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn) { (void)insn; return 0; }
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn) { (void)insn; return 0; }
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata) {
  (void)id;
  (void)cb;
  (void)userdata;
}

int main(void) {
  unsigned char code[4096];
  const size_t n = fread(code, 1, sizeof code, stdin);
  bool after_ls = false;
  for (size_t i = 0; i + 1 < n;) {
    const uint32_t hw1 = code[i] | (uint32_t)code[i + 1] << 8;
    const size_t size = (hw1 >> 11) >= 0x1d ? 4 : 2; /* 11101, 11110, 11111: a 32-bit encoding */
    const uint32_t hw2 = size == 4 ? (code[i + 2] | (uint32_t)code[i + 3] << 8) : 0;
    enum Class cls;
    printf("%zu %d\n", size, Cost(hw1, hw2, size, after_ls, &cls));
    after_ls = cls == kLoadStore;
    i += size;
  }
  return 0;
}
