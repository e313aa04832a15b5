"""Facts about the TFLite Micro runtime that generated projects pin (``tflm_runtime.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class Runtime:
    name: str
    library: str
    lib_dep: str
    commit: str
    include: str
    defines: tuple  # what a generated project's build_flags define for the library and the firmware
    ops: dict  # op name -> MicroMutableOpResolver Add* method
    cmsis_nn: frozenset
    ops_source: str
    known_gaps: tuple
    flash_estimate: dict
    firmware_ram_estimate: dict
    shared_builtin_data: dict
    interpreter_structs: dict

    def supports(self, opname: str) -> bool:
        return opname in self.ops

    def resolver_method(self, opname: str) -> str:
        return self.ops[opname]

    def firmware_ram_bytes(self, input_bytes: int, n_ops: int, n_op_types: int) -> int:
        """RAM of tinydeploy's firmware beside the arena (an estimate: see firmware_ram_estimate's method)."""
        e = self.firmware_ram_estimate
        return int(e["base_bytes"] + input_bytes + e["per_op_bytes"] * n_ops + e["per_op_type_bytes"] * n_op_types)

    def interpreter_floor_bytes(self, tensors: int, nodes: int, io_tensors: int) -> int:
        """The arena tail the interpreter allocates for a model's tensors, nodes and graph inputs and outputs on the
        device, whatever the kernels (interpreter_structs; their quantization not counted)."""
        b = self.interpreter_structs["device_bytes"]
        return tensors * b["TfLiteEvalTensor"] + nodes * b["NodeAndRegistration"] + io_tensors * b["TfLiteTensor"]

    def kernel_flash_bytes(self, opname: str) -> int:
        fe = self.flash_estimate
        return int(fe["kernel_bytes"].get(opname, fe["default_kernel_bytes"]))


@lru_cache(maxsize=1)
def pinned() -> Runtime:
    d = json.loads((resources.files(__package__) / "tflm_runtime.json").read_text())
    return Runtime(name=d["name"], library=d["library"], lib_dep=d["lib_dep"], commit=d["commit"],
                   include=d["include"], defines=tuple(d["defines"]), ops=d["ops"], cmsis_nn=frozenset(d["cmsis_nn"]),
                   ops_source=d["ops_source"],
                   known_gaps=tuple(d["known_gaps"]), flash_estimate=d["flash_estimate"],
                   firmware_ram_estimate=d["firmware_ram_estimate"], shared_builtin_data=d["shared_builtin_data"],
                   interpreter_structs=d["interpreter_structs"])
